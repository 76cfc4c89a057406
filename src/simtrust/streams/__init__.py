"""simtrust.streams."""
