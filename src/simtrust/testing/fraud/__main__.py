"""``python -m simtrust.testing.fraud``: the fraud test gear's command line."""

from simtrust.testing.fraud.cli import app

app()
