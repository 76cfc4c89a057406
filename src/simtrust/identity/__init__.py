"""simtrust.identity."""
