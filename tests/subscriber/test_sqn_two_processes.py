"""Two processes on one store issue 5G vectors for the same SIM at the same time (as two
SBI workers of ``simtrust serve`` do): no SQN is ever issued twice, none is skipped, and
the stored SEQ_HE is the last one issued.

Each process runs several threads calling ``he_av_5g_many`` (the SBI's batched path,
several requests for the one SIM in a batch), so advances race both inside a process
(group commit) and across processes (compare-and-swap on ``sqn_version`` in the
transaction). The SQN of every vector is recovered from its AUTN with the tests' own
MILENAGE (``tests/diameter/reference.py``), not with simtrust's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import Imsi, build_services
from tests.diameter.reference import f2345
from tests.subscriber.conftest import K1, OPC1, imsi, seed_home

SNN = "5G:mnc001.mcc001.3gppnetwork.org"
THREADS = 4
BATCHES = 10  # per thread
BATCH = 4  # requests for the one SIM in each batch
IND_BITS = 5  # SQN = SEQ || IND (TS 33.102 C.1.2), the inventory's default

_ISSUER = """
import sys, threading
from pathlib import Path
from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import Imsi, build_services
rt = Runtime.open(load_settings(env={}, home=Path(sys.argv[1])))
subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
subscriber, threads, batches, batch = sys.argv[2], *map(int, sys.argv[3:6])
lock = threading.Lock()
out = []
def issue():
    for _ in range(batches):
        got = subs.auth.he_av_5g_many(
            [(Imsi(subscriber, 2), sys.argv[6], "test")] * batch)
        with lock:
            out.extend(got)
workers = [threading.Thread(target=issue) for _ in range(threads)]
sys.stdin.readline()  # both processes start issuing together
for t in workers:
    t.start()
for t in workers:
    t.join()
for av in out:
    if isinstance(av, Exception):
        print("error", type(av).__name__)
    else:
        print(av.rand.hex(), av.autn.hex())
subs.close()
rt.close()
"""


def _sqn(rand: bytes, autn: bytes) -> int:
    ak = f2345(K1, OPC1, rand)[3]
    return int.from_bytes(bytes(a ^ b for a, b in zip(autn[:6], ak, strict=True)), "big")


def test_two_processes_never_issue_one_sqn_twice(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_home(home, [1])
    subscriber = imsi(1).value
    procs = [subprocess.Popen(
        [sys.executable, "-c", _ISSUER, str(home), subscriber, str(THREADS), str(BATCHES),
         str(BATCH), SNN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    sqns: list[int] = []
    per_process: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert 0 == proc.returncode, err
        lines = out.split("\n")[:-1]
        assert [] == [line for line in lines if line.startswith("error")]
        per_process.append(len(lines))
        sqns += [_sqn(bytes.fromhex(r), bytes.fromhex(a))
                 for r, a in (line.split() for line in lines)]
    issued = THREADS * BATCHES * BATCH
    assert [issued, issued] == per_process
    assert len(sqns) == len(set(sqns))  # never two vectors with one SQN
    seqs = sorted(sqn >> IND_BITS for sqn in sqns)
    assert list(range(seqs[0], seqs[0] + 2 * issued)) == seqs  # one SEQ each, none skipped
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
        after = subs.auth.he_av_5g(Imsi(subscriber, 2), SNN)
        assert seqs[-1] + 1 == _sqn(after.rand, after.autn) >> IND_BITS
        subs.close()
        assert [] == rt.audit.verify()
    finally:
        rt.close()
