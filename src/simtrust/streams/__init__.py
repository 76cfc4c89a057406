"""Authenticated data channels with provenance; not built yet."""

__all__: list[str] = []
