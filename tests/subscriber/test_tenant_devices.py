"""Devices are per tenant: registering an IMEI another tenant lists succeeds (nothing
about the other tenant is revealed); attach counts the SIM's own tenant's listing; the
upgrade from one-listing-per-IMEI keeps every device."""

from __future__ import annotations

from pathlib import Path

import pytest

from simtrust.errors import Conflict, NotFound
from simtrust.store import SqliteDatabase, TenantStore, apply_migrations
from simtrust.subscriber import Imei, Reason, SubscriberServices, UnknownDevice
from simtrust.subscriber._schema import MIGRATIONS

from .conftest import TENANT, imsi, spec
from .test_attach import HOME, policy


def test_an_imei_listed_by_another_tenant_registers_like_a_new_one(
        lite: SubscriberServices) -> None:
    inv = lite.inventory
    TenantStore(inv.db).create_tenant("globex", "Globex")
    device = Imei("352099000000014")
    inv.add_device("globex", device, actor="globex")
    mine = inv.add_device(TENANT, device, actor="acme", label="meter")
    assert (TENANT, "meter") == (mine.tenant_id, mine.label)
    assert "globex" == inv.get_device(device, "globex").tenant_id
    with pytest.raises(Conflict):  # only the tenant's own listing clashes
        inv.add_device(TENANT, device, actor="acme")
    with pytest.raises(NotFound) as missing:
        inv.get_device(Imei("352099000000022"), TENANT)
    assert "no device with IMEI 352099000000022" == missing.value.detail


def test_attach_uses_the_sims_own_tenants_listing(lite: SubscriberServices) -> None:
    TenantStore(lite.inventory.db).create_tenant("globex", "Globex")
    policy(lite, unknown_device=UnknownDevice.DENY)
    lite.inventory.add_sim(TENANT, spec(1), actor="test")
    shared, foreign = Imei("352099000000014"), Imei("352099000000022")
    lite.inventory.add_device("globex", shared, actor="test")
    lite.inventory.add_device("globex", foreign, actor="test")
    lite.inventory.add_device(TENANT, shared, actor="test")
    assert lite.attach.decide(imsi(1), shared, HOME).allowed
    assert Reason.FOREIGN_DEVICE == lite.attach.decide(imsi(1), foreign, HOME).reason


def test_upgrade_keeps_devices(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "old.db")
    try:
        apply_migrations(db, [m for m in MIGRATIONS if m.version == 1])
        db.execute("INSERT INTO sub_devices (imei, imeisv, tac, tenant_id, group_id, label,"
                   " created_at) VALUES ('352099000000014', NULL, '35209900', 'acme', NULL,"
                   " 'm', '2026-01-01T00:00:00+00:00')")
        apply_migrations(db, MIGRATIONS)
        assert [("352099000000014", "acme", "m")] == [tuple(r) for r in db.query(
            "SELECT imei, tenant_id, label FROM sub_devices")]
        db.execute("INSERT INTO sub_devices (imei, imeisv, tac, tenant_id, group_id, label,"
                   " created_at) VALUES ('352099000000014', NULL, '35209900', 'globex', NULL,"
                   " '', '2026-01-01T00:00:00+00:00')")
    finally:
        db.close()
