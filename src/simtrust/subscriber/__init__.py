"""simtrust.subscriber."""
