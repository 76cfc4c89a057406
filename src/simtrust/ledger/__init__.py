"""simtrust.ledger."""
