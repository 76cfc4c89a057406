"""Fraud detection test gear: the labelled scenario generator and its evaluation.

:mod:`simtrust.testing.fraud.scenarios` generates seeded roaming and cloning
scenarios (rates and mixes in its docstring); :mod:`simtrust.testing.fraud.evaluation`
runs :class:`simtrust.detect.FraudDetector` over them and scores recall, false
alarms per 1,000 SIM-days and time to detect. Used by the tests, ``simtrust
bench fraud`` and the documentation; product code never imports it.
"""

__all__: list[str] = []
