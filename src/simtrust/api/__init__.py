"""simtrust.api."""
