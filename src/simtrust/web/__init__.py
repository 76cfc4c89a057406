"""Dashboard; not built yet (the explorer picture is served by the API)."""

__all__: list[str] = []
