"""Simulators, workload and attack generators and evaluation harnesses.

Nothing here is product code: the benchmarks (``bench/``) and the tests use
it, and no module of the other ``simtrust`` packages imports it. Each area
keeps its gear in a subpackage of its own (``simtrust.testing.<area>``).
"""

__all__: list[str] = []
