"""LwM2M load generators for ``simtrust bench devices``: client load run in a process of
its own (``spawn``), so the DTLS clients and the servers under test do not share one
interpreter and one event loop."""

from simtrust.testing.devices.load import handshake_load, registration_load, run_apart

__all__ = ["handshake_load", "registration_load", "run_apart"]
