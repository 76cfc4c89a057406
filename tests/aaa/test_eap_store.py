"""The EAP identity writer: queued puts and deletes land in order, in batches, with the
re-authentication keys sealed by the writer."""

from __future__ import annotations

from simtrust.aaa import EapIdentityStore
from simtrust.runtime import Runtime


def test_batched_puts_and_deletes_keep_their_order(sqlite_runtime: Runtime) -> None:
    rt = sqlite_runtime
    store = EapIdentityStore(rt.db, rt.keyring, rt.clock, linger=0.2)
    k_encr, k_aut, k_re = bytes(range(16)), bytes(range(32, 64)), bytes(range(64, 96))
    store.put_pseudonym(b"7pseudo", "001010000000001", 50)
    store.put_reauth(b"8used@realm", "001010000000001", 50, k_encr, k_aut, k_re, 1)
    store.delete(b"8used@realm")  # taken before the writer ran: must not come back
    store.put_reauth(b"8next@realm", "001010000000001", 50, k_encr, k_aut, k_re, 2)
    store.put_pseudonym(b"7other", "001010000000002", 50)
    assert store.flush()
    assert 5 == store.written
    assert "001010000000001" == store.pseudonym(b"7pseudo")
    assert "001010000000002" == store.pseudonym(b"7other")
    assert store.take_reauth(b"8used@realm") is None
    taken = store.take_reauth(b"8next@realm")
    assert taken is not None
    assert (k_encr, k_aut, k_re, 2, 50) == (taken.k_encr, taken.k_aut, taken.secret,
                                            taken.counter, taken.method)
    assert store.take_reauth(b"8next@realm") is None  # once
    blobs = [bytes(r[0]) for r in rt.db.query("SELECT keys_sealed FROM aaa_eap_identities"
                                               " WHERE keys_sealed IS NOT NULL")]
    assert all(k_aut not in blob for blob in blobs)
    store.close()


def test_writes_queued_while_the_writer_lingers_share_its_batch(sqlite_runtime: Runtime
                                                                ) -> None:
    rt = sqlite_runtime
    store = EapIdentityStore(rt.db, rt.keyring, rt.clock, linger=0.5)
    for n in range(20):
        store.put_pseudonym(f"7p{n}".encode(), f"00101000000{n:04d}", 50)
    assert store.flush()
    assert 20 == store.written
    assert 1 == store.batches
    store.close()
