"""LwM2M load generators for ``simtrust bench devices``: client load run in a process of
its own (``spawn``), so the DTLS clients and the servers under test do not share one
interpreter and one event loop."""

from simtrust.testing.devices.load import apart, handshake_load, registration_load, run_apart
from simtrust.testing.devices.notify import (
    Drain,
    SharedCount,
    notification_load,
    record_load,
)

__all__ = ["Drain", "SharedCount", "apart", "handshake_load", "notification_load",
           "record_load", "registration_load", "run_apart"]
