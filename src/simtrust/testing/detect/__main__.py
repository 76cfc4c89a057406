"""``python -m simtrust.testing.detect``: the detection test gear's command line."""

from simtrust.testing.detect.cli import app

app()
