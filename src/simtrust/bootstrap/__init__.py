"""Tier-2 credentials bootstrapped from the SIM (GBA-style, TS 33.220); not built yet."""

__all__: list[str] = []
