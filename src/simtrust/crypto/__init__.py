"""simtrust.crypto."""
