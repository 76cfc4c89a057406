"""CA records cached per process expire: another process's profile change or CA removal
is seen without a restart (bootstrap/_ca.py, ``CertificateAuthorities.RECORD_TTL_S``).

A second ``CertificateAuthorities`` on the same store stands for another process (an
API worker, a bootstrap listener worker): it has its own cache and sees the store only.
"""

from __future__ import annotations

import pytest

from simtrust.bootstrap import CertificateAuthorities, CertProfile
from simtrust.errors import NotFound

from .conftest import EST_LABEL, TENANT, Env


def _other(env: Env) -> CertificateAuthorities:
    return CertificateAuthorities(env.rt.db, env.rt.keyring, env.rt.audit, env.clock)


def test_a_profile_changed_elsewhere_is_served_once_the_cached_record_expires(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    other = _other(env)
    assert 3600 == other.get(EST_LABEL).profile.lifetime_s  # cached in "the other process"
    env.boot.cas.set_profile(EST_LABEL, CertProfile(lifetime_s=7200), actor="test")
    assert 7200 == env.boot.cas.get(EST_LABEL).profile.lifetime_s  # own change: at once
    monkeypatch.setattr(CertificateAuthorities, "RECORD_TTL_S", 1e9)
    assert 3600 == other.get(EST_LABEL).profile.lifetime_s  # still within its lifetime
    monkeypatch.setattr(CertificateAuthorities, "RECORD_TTL_S", 0.0)
    assert 7200 == other.get(EST_LABEL).profile.lifetime_s


def test_a_ca_removed_elsewhere_is_unknown_once_the_cached_record_expires(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    spare = env.boot.cas.create_hosted(TENANT, "spare", common_name="Spare CA", actor="test")
    other = _other(env)
    assert spare.ca_id == other.get(spare.est_label).ca_id
    env.boot.cas.remove(spare.est_label, actor="test")
    monkeypatch.setattr(CertificateAuthorities, "RECORD_TTL_S", 1e9)
    assert spare.ca_id == other.get(spare.est_label).ca_id
    monkeypatch.setattr(CertificateAuthorities, "RECORD_TTL_S", 0.0)
    with pytest.raises(NotFound):
        other.get(spare.est_label)
