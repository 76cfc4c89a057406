"""Detection test gear: attack traffic generators, the evaluation harness, its plots.

:mod:`simtrust.testing.detect.attacks` synthesises attack packets (Mirai-style
scanning, floods, beacons, SIM swaps), :mod:`simtrust.testing.detect.evaluation`
scores the detectors on benign captures with injected attacks, and
:mod:`simtrust.testing.detect.plots` draws the documentation figures from it.
Used by the tests, ``simtrust bench`` and the documentation; product code never
imports it.
"""

__all__: list[str] = []
