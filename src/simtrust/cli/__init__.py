"""simtrust.cli."""
