"""simtrust.demo."""
