"""simtrust.market."""
