"""Roaming and slice-SLA settlement contracts between operators; not built yet."""

__all__: list[str] = []
