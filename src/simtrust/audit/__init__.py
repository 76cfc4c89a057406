"""Tamper-evident audit trail: the hash-chained event log and its verification."""

from simtrust.audit._log import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    AuditLog,
    ChainBreak,
    chain_hash,
)

__all__ = ["GENESIS_HASH", "AuditEntry", "AuditEvent", "AuditLog", "ChainBreak", "chain_hash"]
