"""Schema of the base aggregates (component ``tenancy``)."""

from simtrust.store._tenants import MIGRATIONS

__all__ = ["MIGRATIONS"]
