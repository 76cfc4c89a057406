"""simtrust.web."""
