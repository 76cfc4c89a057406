"""Schema of the audit log (component ``audit``)."""

from simtrust.audit._log import MIGRATIONS

__all__ = ["MIGRATIONS"]
