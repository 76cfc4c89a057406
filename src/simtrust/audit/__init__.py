"""simtrust.audit."""
