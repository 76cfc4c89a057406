"""``python -m simtrust``: the same as the ``simtrust`` command."""

from simtrust.cli import main

main()
