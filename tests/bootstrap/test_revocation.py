"""Revocation tied to the SIM: a swap, a policy/detection remove and termination revoke."""

from __future__ import annotations

from cryptography import x509

from simtrust.subscriber import AttachPolicy, BindingMode, Imei, SimState

from .conftest import LABEL, TENANT, Env, iccid, imsi


def imei(n: int) -> Imei:
    return Imei.from_tac_snr("35209900", f"{n:06d}")


def enrol(env: Env, n: int) -> x509.Certificate:
    applet = env.applet(n)
    with env.client(applet) as client:
        client.bootstrap()
        return client.enroll(LABEL, "tls")


def status(env: Env, cert: x509.Certificate) -> tuple[str, str | None]:
    c = env.boot.cas.certificate(format(cert.serial_number, "x"))
    return c.status, c.revocation_reason


def test_sim_seen_in_a_new_device_revokes(env: Env) -> None:
    env.subs.inventory.set_policy(
        AttachPolicy(TENANT, binding_mode=BindingMode.IMEI_PRIMARY), actor="test")
    first = env.subs.attach.decide(imsi(1), imei(1), "00101")
    assert first.allowed, first
    cert = enrol(env, 1)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"urn:imei:{imei(1).value[:8]}-{imei(1).value[8:14]}-" in " ".join(
        sans.get_values_for_type(x509.UniformResourceIdentifier))
    env.subs.attach.decide(imsi(1), imei(2), "00101")
    env.subs.alerts.flush()
    assert "sim-in-new-device" in [a.kind for a in env.alerts.alerts]
    assert ("revoked", "affiliationChanged") == status(env, cert)


def test_policy_remove_and_termination_revoke(env: Env) -> None:
    removed = enrol(env, 1)
    env.boot.revocation.remove(imsi(1), tenant_id=TENANT, reason="ddos", actor="policy")
    assert ("revoked", "privilegeWithdrawn") == status(env, removed)
    terminated = enrol(env, 2)
    env.subs.inventory.transition(iccid(2), SimState.TERMINATED, actor="test")
    assert ("revoked", "cessationOfOperation") == status(env, terminated)
    # The terminated SIM's GBA context is gone: a stored B-TID no longer yields Ks_NAF.
    actions = [e.action for e in env.rt.audit.query(limit=1000)]
    assert 2 == actions.count("pki.revoke-sim")
