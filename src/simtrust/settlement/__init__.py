"""simtrust.settlement."""
