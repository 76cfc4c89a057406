"""S6a and S13 against an independent peer: python-diameter encodes the MME's requests.

Vectors are checked by the tests' own MILENAGE (reference.py); answers are
parsed by python-diameter, so a codec error on either side shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from diameter.message.avp import Avp
from diameter.message.avp.grouped import (
    RequestedEutranAuthenticationInfo,
    TerminalInformation,
    VendorSpecificApplicationId,
)
from diameter.message.commands import (
    AuthenticationInformationRequest,
    CancelLocationAnswer,
    DeviceWatchdogAnswer,
    DeviceWatchdogRequest,
    DisconnectPeerRequest,
    InsertSubscriberDataAnswer,
    MeIdentityCheckRequest,
    PurgeUeRequest,
    UpdateLocationRequest,
)
from diameter.message.constants import (
    AVP_TGPP_IMEI,
    AVP_TGPP_SOFTWARE_VERSION,
    AVP_TGPP_TERMINAL_INFORMATION,
    VENDOR_TGPP,
)

from simtrust.runtime import Runtime
from simtrust.store import open_database
from simtrust.subscriber import Imei, Roaming, SimState, build_services

from ..subscriber.conftest import TENANT, imei, imsi, spec
from .conftest import MME, REALM, S6A, S13, Env, Mme
from .reference import auts, check_eutran_vector, plmn_bytes

HOME = plmn_bytes("001", "01")
SESSION = iter(range(1, 1_000_000))


def _common(msg: Any, app: int = S6A) -> Any:
    msg.session_id = f"{MME};1;{next(SESSION)}"
    msg.auth_session_state = 1
    msg.origin_host = MME.encode()
    msg.origin_realm = REALM.encode()
    msg.destination_realm = REALM.encode()
    msg.vendor_specific_application_id = VendorSpecificApplicationId(
        vendor_id=10415, auth_application_id=app)
    msg.header.application_id = app
    return msg


def air(user: str, count: int = 1, plmn: bytes = HOME, resync: bytes | None = None) -> Any:
    msg = _common(AuthenticationInformationRequest())
    msg.user_name = user
    msg.visited_plmn_id = plmn
    msg.requested_eutran_authentication_info = RequestedEutranAuthenticationInfo(
        number_of_requested_vectors=count, immediate_response_preferred=1,
        re_synchronization_info=resync)
    return msg


def ulr(user: str, equipment: str | None, plmn: bytes = HOME, flags: int = 0x22) -> Any:
    msg = _common(UpdateLocationRequest())
    msg.user_name = user
    msg.visited_plmn_id = plmn
    msg.rat_type = 1004
    msg.ulr_flags = flags
    if equipment is not None:
        # python-diameter 0.9 declares but does not encode ULR's Terminal-Information.
        msg.append_avp(Avp.new(AVP_TGPP_TERMINAL_INFORMATION, VENDOR_TGPP, value=[
            Avp.new(AVP_TGPP_IMEI, VENDOR_TGPP, value=equipment[:14]),
            Avp.new(AVP_TGPP_SOFTWARE_VERSION, VENDOR_TGPP, value="01"),
        ]))
    return msg


def experimental(answer: Any) -> int | None:
    er = getattr(answer, "experimental_result", None)
    return None if er is None else int(er.experimental_result_code)


@pytest.fixture
def sims(env: Env) -> Env:
    inv = env.subs.inventory
    inv.add_sim(TENANT, spec(1, apn=None, static_ip="10.45.0.7", roaming=Roaming.parse(["*"])), actor="test")
    inv.add_sim(TENANT, spec(2, state=SimState.SUSPENDED), actor="test")
    inv.add_sim(TENANT, spec(3, roaming=Roaming.parse(["001-01"])), actor="test")
    return env


def test_capabilities_exchange_advertises_s6a_and_s13(env: Env) -> None:
    client = Mme(env.port)
    try:
        cea = client.cer()
        assert 2001 == cea.result_code
        assert b"hss.test.realm" == cea.origin_host
        apps = {v.auth_application_id for v in cea.vendor_specific_application_id}
        assert {S6A, S13} == apps
        assert [MME] == [p["host"] for p in env.listener.node.peers()]
    finally:
        client.close()


def test_unknown_peer_is_refused_with_3010_and_closed(env: Env) -> None:
    client = Mme(env.port, origin="rogue.test.realm")
    try:
        assert 3010 == client.cer().result_code
        with pytest.raises(ConnectionError):
            client.read_raw()
    finally:
        client.close()


def test_peer_without_a_common_application_gets_5010(env: Env) -> None:
    client = Mme(env.port)
    try:
        assert 5010 == client.cer(apps=(16777238,)).result_code
    finally:
        client.close()


def test_air_vectors_verify_with_an_independent_milenage(sims: Env, mme: Mme) -> None:
    aia = mme.exchange(air(imsi(1).value, count=3))
    assert 2001 == aia.result_code
    vectors = aia.authentication_info.e_utran_vector
    assert [1, 2, 3] == [v.item_number for v in vectors]
    sqns = [check_eutran_vector(v.rand, v.xres, v.autn, v.kasme, HOME) for v in vectors]
    assert sorted(sqns) == sqns
    assert len(set(sqns)) == 3


def test_air_visited_plmn_binds_kasme(sims: Env, mme: Mme) -> None:
    visited = plmn_bytes("208", "93")
    aia = mme.exchange(air(imsi(1).value, plmn=visited))
    vector = aia.authentication_info.e_utran_vector[0]
    check_eutran_vector(vector.rand, vector.xres, vector.autn, vector.kasme, visited)


def test_air_resynchronisation_with_auts(sims: Env, mme: Mme) -> None:
    first = mme.exchange(air(imsi(1).value)).authentication_info.e_utran_vector[0]
    sqn_ms = (2**40).to_bytes(6, "big")  # the USIM is far ahead
    token = first.rand + auts(first.rand, sqn_ms)
    aia = mme.exchange(air(imsi(1).value, resync=token))
    assert 2001 == aia.result_code
    vector = aia.authentication_info.e_utran_vector[0]
    sqn = check_eutran_vector(vector.rand, vector.xres, vector.autn, vector.kasme, HOME)
    assert int.from_bytes(sqn, "big") > 2**40


def test_air_with_forged_auts_is_4181(sims: Env, mme: Mme) -> None:
    aia = mme.exchange(air(imsi(1).value, resync=bytes(30)))
    assert 4181 == experimental(aia)


@pytest.mark.parametrize(("n", "plmn", "code"), [
    (99, HOME, 5001),                       # user unknown
    (2, HOME, 5420),                        # suspended: no EPS subscription
    (3, plmn_bytes("208", "93"), 5004),     # roaming not allowed
])
def test_air_refusals_are_experimental_results(
    sims: Env, mme: Mme, n: int, plmn: bytes, code: int
) -> None:
    aia = mme.exchange(air(imsi(n).value, plmn=plmn))
    assert code == experimental(aia)
    assert getattr(aia, "authentication_info", None) is None


def test_ulr_decides_and_returns_subscription_data(sims: Env, mme: Mme) -> None:
    ula = mme.exchange(ulr(imsi(1).value, imei(1).value))
    assert 2001 == ula.result_code
    data = ula.subscription_data
    assert 2 == data.network_access_mode
    config = data.apn_configuration_profile.apn_configuration[0]
    assert "*" == config.service_selection
    assert [(1, "10.45.0.7")] == config.served_party_ip_address
    node = sims.subs.hss.serving_node(imsi(1).value)
    assert node is not None
    assert MME == node.host
    actions = [e.action for e in sims.rt.audit.iter_all()]
    assert "hss.register" in actions


def test_ulr_refusals(sims: Env, mme: Mme) -> None:
    assert 5001 == experimental(mme.exchange(ulr(imsi(99).value, imei(1).value)))
    assert 5420 == experimental(mme.exchange(ulr(imsi(2).value, imei(2).value)))
    assert 5004 == experimental(
        mme.exchange(ulr(imsi(3).value, imei(3).value, plmn=plmn_bytes("208", "93"))))


def test_ulr_blocklisted_equipment_is_refused(sims: Env, mme: Mme) -> None:
    sims.subs.blocklist.add_imei(imei(5).value, reason="stolen", actor="test")
    assert 5420 == experimental(mme.exchange(ulr(imsi(1).value, imei(5).value)))


def test_ulr_without_terminal_information_is_5005(sims: Env, mme: Mme) -> None:
    ula = mme.exchange(ulr(imsi(1).value, None))
    assert 5005 == ula.result_code
    assert ula.find_avps((279, 0))  # Failed-AVP


def test_purge(sims: Env, mme: Mme) -> None:
    mme.exchange(ulr(imsi(1).value, imei(1).value))
    pur = _common(PurgeUeRequest())
    pur.user_name = imsi(1).value
    pur.pur_flags = 1
    assert 2001 == mme.exchange(pur).result_code
    assert sims.subs.hss.serving_node(imsi(1).value) is None


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_suspending_a_registered_sim_sends_clr(sims: Env, mme: Mme) -> None:
    assert 2001 == mme.exchange(ulr(imsi(1).value, imei(1).value)).result_code
    sims.subs.inventory.transition(spec(1).iccid, SimState.SUSPENDED, actor="policy",
                                   reason="remove")
    clr = mme.read()
    assert 317 == clr.header.command_code
    assert clr.header.is_request
    assert imsi(1).value == clr.user_name
    assert 2 == clr.cancellation_type  # SUBSCRIPTION_WITHDRAWAL
    cla = CancelLocationAnswer()
    cla.header.hop_by_hop_identifier = clr.header.hop_by_hop_identifier
    cla.header.end_to_end_identifier = clr.header.end_to_end_identifier
    cla.header.application_id = S6A
    cla.session_id = clr.session_id
    cla.result_code = 2001
    cla.auth_session_state = 1
    cla.origin_host = MME.encode()
    cla.origin_realm = REALM.encode()
    mme.send_raw(cla.as_bytes())
    assert sims.subs.hss.serving_node(imsi(1).value) is None
    actions = [e.action for e in sims.rt.audit.iter_all()]
    assert "hss.cancel-location" in actions


def _dwa(dwr: Any) -> bytes:
    dwa = DeviceWatchdogAnswer()
    dwa.header.hop_by_hop_identifier = dwr.header.hop_by_hop_identifier
    dwa.header.end_to_end_identifier = dwr.header.end_to_end_identifier
    dwa.result_code = 2001
    dwa.origin_host = MME.encode()
    dwa.origin_realm = REALM.encode()
    return bytes(dwa.as_bytes())


def test_a_sim_suspended_by_another_process_sends_clr(sims: Env, mme: Mme) -> None:
    """An API worker process suspends the SIM; the master's listener follows the change feed."""
    assert 2001 == mme.exchange(ulr(imsi(1).value, imei(1).value)).result_code
    sims.subs.hss.follow_changes(interval=0.02)
    other = Runtime(sims.rt.settings, open_database(sims.rt.settings.store_url),
                    sims.rt.keyring)
    try:
        worker = build_services(other.db, other.keyring, other.audit, other.clock, sinks=[])
        worker.inventory.transition(spec(1).iccid, SimState.SUSPENDED, actor="operator",
                                    reason="api")
        worker.close()
        clr = mme.read()
        while 280 == clr.header.command_code:  # the listener's watchdog (1 s in these tests)
            mme.send_raw(_dwa(clr))
            clr = mme.read()
        assert 317 == clr.header.command_code
        assert imsi(1).value == clr.user_name
    finally:
        sims.subs.hss.stop_following()
        other.close()


def test_subscription_change_sends_idr(sims: Env, mme: Mme) -> None:
    assert 2001 == mme.exchange(ulr(imsi(1).value, imei(1).value)).result_code
    sims.subs.inventory.update_sim(spec(1).iccid, static_ip="10.45.0.9", actor="test")
    idr = mme.read()
    assert 319 == idr.header.command_code
    config = idr.subscription_data.apn_configuration_profile.apn_configuration[0]
    assert [(1, "10.45.0.9")] == config.served_party_ip_address
    ida = InsertSubscriberDataAnswer()
    ida.header.hop_by_hop_identifier = idr.header.hop_by_hop_identifier
    ida.header.end_to_end_identifier = idr.header.end_to_end_identifier
    ida.session_id = idr.session_id
    ida.result_code = 2001
    ida.auth_session_state = 1
    ida.origin_host = MME.encode()
    ida.origin_realm = REALM.encode()
    mme.send_raw(ida.as_bytes())


def ecr(equipment: Imei, user: str | None = None) -> Any:
    msg = _common(MeIdentityCheckRequest(), S13)
    msg.terminal_information = TerminalInformation(imei=equipment.value[:14],
                                                   software_version="02")
    if user is not None:
        msg.user_name = user
    return msg


def test_s13_equipment_status(sims: Env, mme: Mme) -> None:
    bl = sims.subs.blocklist
    bl.add_imei(imei(7).value, reason="stolen", actor="test")
    bl.add_tac_range("86000000", "86000099", reason="counterfeit", actor="test",
                     tenant_id="other")
    assert 0 == mme.exchange(ecr(imei(1), imsi(1).value)).equipment_status
    assert 1 == mme.exchange(ecr(imei(7), imsi(1).value)).equipment_status
    assert 2 == mme.exchange(ecr(imei(8, tac="86000012"), imsi(1).value)).equipment_status
    actions = [e.action for e in sims.rt.audit.iter_all()]
    assert 3 == actions.count("eir.check")


def test_duplicate_request_is_answered_once(sims: Env, mme: Mme) -> None:
    request = mme.stamp(air(imsi(1).value), e2e=424242)
    mme.send_raw(request.as_bytes())
    first = mme.read()
    request.header.is_retransmit = True
    request.header.hop_by_hop_identifier = 777
    mme.send_raw(request.as_bytes())
    second = mme.read()
    assert 777 == second.header.hop_by_hop_identifier
    assert (first.authentication_info.e_utran_vector[0].rand
            == second.authentication_info.e_utran_vector[0].rand)
    assert 1 == sims.listener.node.stats["duplicates"]


def test_watchdog_and_disconnect(env: Env, mme: Mme) -> None:
    dwr = DeviceWatchdogRequest()
    dwr.origin_host = MME.encode()
    dwr.origin_realm = REALM.encode()
    assert 2001 == mme.exchange(dwr).result_code
    # Silent for longer than the node's 1 s watchdog: it probes us with a DWR.
    probe = mme.read()
    assert 280 == probe.header.command_code
    assert probe.header.is_request
    dpr = DisconnectPeerRequest()
    dpr.origin_host = MME.encode()
    dpr.origin_realm = REALM.encode()
    dpr.disconnect_cause = 2
    assert 2001 == mme.exchange(dpr).result_code
    with pytest.raises(ConnectionError):
        mme.read_raw()
