"""simtrust.detect."""
