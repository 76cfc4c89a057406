"""Debian's radclient (freeradius-utils) against simtrust's RADIUS server: accepts with
addresses, rejects with reasons, PAP and CHAP second-level credentials, accounting."""

from __future__ import annotations

from simtrust.subscriber import SimState

from .conftest import APN, Aaa, iccid, imeisv, imsi, radclient, wait_until


def access(n: int, *, apn: str = APN, extra: str = "", plmn: str = "00101") -> str:
    return (f'3GPP-IMSI = "{imsi(n)}", 3GPP-IMEISV = "{imeisv(n)}", '
            f'3GPP-SGSN-MCC-MNC = "{plmn}", Called-Station-Id = "{apn}", '
            f'Calling-Station-Id = "4915{n:09d}", User-Name = "{imsi(n)}"{extra}\n')


def test_accept_carries_the_pool_address_class_and_timeout(aaa: Aaa) -> None:
    aaa.add_sim(1)
    out = radclient(aaa.auth_port, "auth", access(1, extra=', User-Password = "x"'))
    assert "Received Access-Accept" in out, out
    assert "Framed-IP-Address = 10.45.0.1" in out
    assert "Session-Timeout = 86400" in out
    assert f'Class = 0x{f"simtrust:acme:{iccid(1)}".encode().hex()}' in out


def test_static_address_wins_over_the_pool(aaa: Aaa) -> None:
    aaa.add_sim(2, static_ip="192.0.2.10")
    out = radclient(aaa.auth_port, "auth", access(2))
    assert "Framed-IP-Address = 192.0.2.10" in out, out


def test_suspended_unknown_and_roaming_are_rejected(aaa: Aaa) -> None:
    aaa.add_sim(3, state=SimState.SUSPENDED)
    out = radclient(aaa.auth_port, "auth", access(3))
    assert "Received Access-Reject" in out, out
    assert "sim-suspended" in out, out
    out = radclient(aaa.auth_port, "auth", access(99))
    assert "Received Access-Reject" in out, out
    assert "unknown-sim" in out, out
    aaa.add_sim(4)
    out = radclient(aaa.auth_port, "auth", access(4, plmn="26202"))
    assert "Received Access-Reject" in out, out
    assert "roaming-not-permitted" in out, out
    out = radclient(aaa.auth_port, "auth", access(4, apn="other.apn"))
    assert "Received Access-Reject" in out, out
    assert "apn-not-subscribed" in out, out


def test_second_level_pap_and_chap(aaa: Aaa) -> None:
    aaa.add_sim(5)
    aaa.services.apns.set_access("acme", APN, actor="test", auth="any", session_timeout=3600)
    aaa.services.apns.add_user("acme", APN, "meter-5", "s3cret-pw", actor="test")
    ok = radclient(aaa.auth_port, "auth",
                   access(5).replace(f'User-Name = "{imsi(5)}"', 'User-Name = "meter-5"')
                   .rstrip("\n") + ', User-Password = "s3cret-pw"\n')
    assert "Received Access-Accept" in ok, ok
    assert "Session-Timeout = 3600" in ok, ok
    bad = radclient(aaa.auth_port, "auth",
                    access(5).replace(f'User-Name = "{imsi(5)}"', 'User-Name = "meter-5"')
                    .rstrip("\n") + ', User-Password = "wrong"\n')
    assert "Received Access-Reject" in bad, bad
    assert "apn-credentials" in bad, bad
    chap = radclient(aaa.auth_port, "auth",
                     access(5).replace(f'User-Name = "{imsi(5)}"', 'User-Name = "meter-5"')
                     .rstrip("\n") + ', CHAP-Password = "s3cret-pw"\n')
    assert "Received Access-Accept" in chap, chap
    chap_bad = radclient(aaa.auth_port, "auth",
                         access(5).replace(f'User-Name = "{imsi(5)}"', 'User-Name = "meter-5"')
                         .rstrip("\n") + ', CHAP-Password = "nope"\n')
    assert "Received Access-Reject" in chap_bad, chap_bad


def test_wrong_secret_gets_no_answer(aaa: Aaa) -> None:
    aaa.add_sim(6)
    aaa.services.apns.set_access("acme", APN, actor="test", auth="pap")
    aaa.services.apns.add_user("acme", APN, "u6", "pw", actor="test")
    out = radclient(aaa.auth_port, "auth",
                    access(6).rstrip("\n") + ', Message-Authenticator = 0x00\n',
                    secret="not-the-secret", retries=1, timeout=0.5)
    assert "Received" not in out, out
    assert aaa.services.server.counters["bad_authenticator"] >= 1


def test_accounting_start_interim_stop_with_gigawords(aaa: Aaa) -> None:
    aaa.add_sim(7)
    base = (f'Acct-Session-Id = "s-7", 3GPP-IMSI = "{imsi(7)}", Framed-IP-Address = 10.45.0.9, '
            f'NAS-IP-Address = 127.0.0.1, Called-Station-Id = "{APN}", '
            f'3GPP-SGSN-MCC-MNC = "00101", Calling-Station-Id = "491500000007"')
    out = radclient(aaa.acct_port, "acct", base + ', Acct-Status-Type = Start\n')
    assert "Received Accounting-Response" in out, out
    out = radclient(aaa.acct_port, "acct", base + ', Acct-Status-Type = Interim-Update, '
                    'Acct-Input-Octets = 1000, Acct-Output-Octets = 2000, '
                    'Acct-Input-Gigawords = 1, Acct-Input-Packets = 10, '
                    'Acct-Output-Packets = 20, Acct-Session-Time = 60\n')
    assert "Received Accounting-Response" in out, out
    out = radclient(aaa.acct_port, "acct", base + ', Acct-Status-Type = Stop, '
                    'Acct-Input-Octets = 5000, Acct-Output-Octets = 7000, '
                    'Acct-Input-Gigawords = 1, Acct-Session-Time = 120, '
                    'Acct-Terminate-Cause = User-Request\n')
    assert "Received Accounting-Response" in out, out
    sessions = aaa.services.accounting.sessions_of(iccid(7).value)
    assert 1 == len(sessions)
    session = sessions[0]
    assert "closed" == session.status
    assert (1 << 32) + 5000 == session.in_octets
    assert 7000 == session.out_octets
    assert 120 == session.session_time
    assert 1 == session.terminate_cause
    assert session.visited_plmn is None


def test_roaming_session_is_tagged_with_the_visited_network(aaa: Aaa) -> None:
    aaa.add_sim(8)
    out = radclient(aaa.acct_port, "acct",
                    f'Acct-Session-Id = "s-8", 3GPP-IMSI = "{imsi(8)}", '
                    f'3GPP-SGSN-MCC-MNC = "26202", Acct-Status-Type = Start\n')
    assert "Received Accounting-Response" in out, out
    session = aaa.services.accounting.sessions_of(iccid(8).value)[0]
    assert "26202" == session.visited_plmn
    assert [session.session_key] == [s.session_key for s in
                                     aaa.services.accounting.roaming_sessions(closed_only=False)]


def test_attach_decisions_from_radius_are_audited(aaa: Aaa) -> None:
    aaa.add_sim(9)
    radclient(aaa.auth_port, "auth", access(9))

    def found() -> bool:
        events = aaa.rt.audit.query(action="attach.decisions", limit=100)
        return any(str(imsi(9)) in str(e.to_json()) for e in events)

    wait_until(found)
