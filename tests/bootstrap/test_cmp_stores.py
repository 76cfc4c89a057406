"""The CMP delegate's durable tables on SQLite and PostgreSQL: the rr outbox and the
waiting enrolments, against OpenSSL's CMP mock server."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from simtrust.bootstrap import CertificateAuthorities, CmpProtection
from simtrust.bootstrap._ca_waiting import EnrolmentPending
from simtrust.runtime import Runtime

from .cmp_support import REFERENCE, SECRET, Enterprise, csr_for, device, mock_cmp
from .conftest import TENANT, Clock

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed")


def test_outbox_and_waiting_enrolments_on_each_store(runtime: Runtime, tmp_path: Path) -> None:
    runtime.tenants.create_tenant(TENANT, "Acme")
    clock = Clock()
    cas = CertificateAuthorities(runtime.db, runtime.keyring, runtime.audit, clock)
    ent = Enterprise(SimpleNamespace(clock=clock), tmp_path)  # type: ignore[arg-type]
    key = ec.generate_private_key(ec.SECP256R1())
    expected = ent.issue(key.public_key(), "m", tmp_path / "issued.pem")
    csr = csr_for(key)
    with mock_cmp("-srv_secret", f"pass:{SECRET}", "-srv_ref", REFERENCE,
                  "-rsp_cert", tmp_path / "issued.pem", "-poll_count", "1",
                  "-check_after", "1") as url:
        ca = cas.register_delegated(
            TENANT, "acme-cmp", kind="cmp", cmp_url=url, ca_pem=ent.cert_pem, actor="test",
            cmp=CmpProtection("pbm", secret=SECRET.encode(), reference=REFERENCE.encode()))
        with pytest.raises(EnrolmentPending) as pending:
            cas.issue(ca, csr, device(), actor="test")
        assert 1 == pending.value.context["retry_after"]
        assert {"issued": 0, "waiting": 0, "failed": 0} == cas.delegated.poll()  # not due
        clock.advance(seconds=1)
        assert {"issued": 1, "waiting": 0, "failed": 0} == cas.delegated.poll()
        assert expected == cas.issue(ca, csr, device(), actor="test")
        serial = format(expected.serial_number, "x")
        cas.revoke(serial, reason="keyCompromise", actor="test")
        assert {"done": 1, "refused": 0, "retry": 0} == cas.forwarder.forward()
    assert "done" == cas.forwarder.state(serial)["state"]
    assert [serial] == [c.serial for c in cas.certificates(iccid=device().iccid)]
