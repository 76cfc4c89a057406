"""What a registration reads of its SIM and of its endpoint name: the inventory's
four-column standing (read at every registration, never cached), the name's fast check
against the identifier classes, and the registration ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtrust.devices import (
    CON,
    Code,
    CredentialStore,
    DeviceManager,
    Message,
    Opt,
    Peer,
    parse_endpoint,
)
from simtrust.domain import Imei, Imsi, luhn_check_digit
from simtrust.errors import DecodeError, InvalidIdentifier
from simtrust.subscriber import Sim, SimState

from .conftest import IMEI1, TENANT, Env, dm_client, iccid, imsi


def test_standing_is_what_find_sim_gives(env: Env) -> None:
    inv = env.subs.inventory
    group = inv.create_group(TENANT, "meters", actor="test")
    inv.update_sim(iccid(2), group_id=group.id, actor="test")
    inv.transition(iccid(3), SimState.SUSPENDED, actor="test")
    for n in (1, 2, 3):
        sim = inv.find_sim(imsi(n))
        assert sim is not None
        assert (sim.iccid.value, sim.tenant_id, sim.state.value, sim.group_id) == \
            inv.sim_standing(imsi(n).value)
    assert inv.sim_standing(imsi(2).value)[3] == group.id  # type: ignore[index]
    assert inv.sim_standing("001019999999999") is None


def test_registration_reads_the_sim_now(env: Env) -> None:
    """A SIM suspended after its first registration is refused at its next one (the read is
    not cached); the registration keeps the SIM's ICCID, tenant and group."""
    inv = env.subs.inventory
    group = inv.create_group(TENANT, "meters", actor="test")
    inv.update_sim(iccid(1), group_id=group.id, actor="test")
    dev = dm_client(env, 1, IMEI1)
    manager = env.devices.manager

    async def register() -> None:
        try:
            await dev.register()
        finally:
            dev.close()

    env.devices.call(register())
    reg = env.devices.run_sync(lambda: manager.get(dev.endpoint_name))
    assert (iccid(1).value, TENANT, group.id) == (reg.iccid, reg.tenant_id, reg.group_id)
    inv.transition(iccid(1), SimState.SUSPENDED, actor="test")
    refused = manager.refused.get("sim-not-active", 0)
    with pytest.raises(ConnectionRefusedError, match=r"4\.03"):
        env.devices.call(register())
    assert refused + 1 == manager.refused.get("sim-not-active", 0)


class _Sink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, peer: Peer, data: bytes) -> None:
        self.sent.append(data)


class _FindOnly:
    """A finder with ``find_sim`` alone (no ``sim_standing``), as other finders are."""

    def __init__(self, env: Env) -> None:
        self._inventory = env.subs.inventory

    def find_sim(self, imsi: Imsi) -> Sim | None:
        return self._inventory.find_sim(imsi)


def _register(manager: DeviceManager, peer: Peer, n: int, mid: int) -> Message | None:
    return manager.handle(peer, Message(CON, Code.POST, mid, b"t", (
        (Opt.URI_PATH, b"rd"), (Opt.URI_QUERY, f"ep=urn:imsi:{imsi(n).value}".encode()),
        (Opt.URI_QUERY, b"b=U")), b"</1/0>,</3/0>"))


def test_a_finder_without_standing_is_asked_find_sim(env: Env) -> None:
    inv = env.subs.inventory
    group = inv.create_group(TENANT, "meters", actor="test")
    inv.update_sim(iccid(2), group_id=group.id, actor="test")
    inv.transition(iccid(3), SimState.SUSPENDED, actor="test")
    manager = DeviceManager(_FindOnly(env), CredentialStore(env.rt.db, env.rt.keyring,
                                                            env.clock), [],
                            lambda: datetime.now(UTC), allow_nosec=True)
    sink = _Sink()
    answers = [_register(manager, Peer((f"10.0.0.{n}", 5683), sink), n, n) for n in (1, 2, 3)]
    assert [Code.CREATED, Code.CREATED, Code.FORBIDDEN] == [a.code for a in answers if a]
    reg = manager.get_by_imsi(imsi(2).value)
    assert (iccid(2).value, TENANT, group.id) == (reg.iccid, reg.tenant_id, reg.group_id)
    assert 1 == manager.refused["sim-not-active"]


def test_registration_ids_are_distinct(env: Env) -> None:
    """More registrations than one random read holds ids for (512): every id new, 12 hex
    digits, the one the 2.01 names."""
    manager = DeviceManager(_FindOnly(env), CredentialStore(env.rt.db, env.rt.keyring,
                                                            env.clock), [],
                            lambda: datetime.now(UTC), allow_nosec=True)
    sink = _Sink()
    ids = set()
    for i in range(1200):
        answer = _register(manager, Peer((f"10.0.{i >> 8}.{i & 255}", 5683), sink),
                           1 + i % 2, i)
        assert answer is not None
        assert answer.code == Code.CREATED
        reg_id = answer.location[1]
        assert 12 == len(reg_id)
        assert int(reg_id, 16) >= 0
        ids.add(reg_id)
        manager._recent.clear()  # the flood allowance is not what is tested here
    assert 1200 == len(ids)


def _general(name: str) -> tuple[str | None, str | None]:
    """What the identifier classes make of an ``urn:imei-imsi:`` name."""
    imei, sep, imsi_digits = name[len("urn:imei-imsi:"):].partition("-")
    if not sep:
        raise DecodeError("no separator")
    try:
        return Imei(imei).value, Imsi(imsi_digits).value
    except InvalidIdentifier as exc:
        raise DecodeError(str(exc)) from exc


_DIGITS = st.text(alphabet="0123456789", min_size=0, max_size=17)


@settings(max_examples=400, deadline=None)
@given(imei=st.one_of(_DIGITS, st.text(alphabet="0123456789 x٣", max_size=16),
                      _DIGITS.filter(lambda d: len(d) == 14).map(
                          lambda d: d + str(luhn_check_digit(d)))),
       imsi_digits=st.one_of(_DIGITS, st.text(alphabet="0123456789 -x٣", max_size=16)))
def test_imei_imsi_names_are_checked_as_before(imei: str, imsi_digits: str) -> None:
    name = f"urn:imei-imsi:{imei}-{imsi_digits}"
    try:
        expected: tuple[str | None, str | None] | type[DecodeError] = _general(name)
    except DecodeError:
        expected = DecodeError
    if not all(0x21 <= ord(c) <= 0x7E for c in name) or len(name) > 128:
        expected = DecodeError  # outside the printable bound, whatever it carries
    if expected is DecodeError:
        with pytest.raises(DecodeError):
            parse_endpoint(name)
    else:
        assert expected == parse_endpoint(name)
