"""simtrust.bootstrap."""
