"""Federated CSP marketplace over TMF622/TMF641 ordering; not built yet."""

__all__: list[str] = []
