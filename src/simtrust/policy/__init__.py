"""simtrust.policy."""
