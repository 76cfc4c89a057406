"""Acknowledged means durable for the AuC under group commit: a process issuing EPS
vectors from many threads is killed with SIGKILL; every vector it handed out has an
SQN at or below the stored SEQ_HE, so no answered SQN is ever issued again.

The SQN of each answered vector is recovered from its AUTN with the tests' own
MILENAGE (``tests/diameter/reference.py``), not with simtrust's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import Imsi, Plmn, build_services
from tests.diameter.reference import f2345
from tests.subscriber.conftest import K1, OPC1, imsi, seed_home

SIMS = 3
THREADS = 12
ANSWERS = 300

_ISSUER = """
import sys, threading
from pathlib import Path
from simtrust.config import load_settings
from simtrust.runtime import Runtime
from simtrust.subscriber import Imsi, Plmn, build_services
rt = Runtime.open(load_settings(env={}, home=Path(sys.argv[1])))
subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
sims = int(sys.argv[2])
lock = threading.Lock()
def issue(t):
    k = 0
    while True:
        k += 1
        imsi = Imsi(f"00101{(t + k) % sims:010d}", 2)
        vector = subs.auth.eps_vectors(imsi, Plmn("001", "01"), 1)[0]
        with lock:  # one whole line per answer
            sys.stdout.write(f"{imsi.value} {vector.rand.hex()} {vector.autn.hex()}\\n")
            sys.stdout.flush()
for t in range(int(sys.argv[3])):
    threading.Thread(target=issue, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_no_answered_sqn_is_reissued_after_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_home(home, range(SIMS))
    proc = subprocess.Popen([sys.executable, "-c", _ISSUER, str(home), str(SIMS), str(THREADS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ})
    assert proc.stdout is not None
    lines: list[bytes] = []
    deadline = time.monotonic() + 120
    while len(lines) < ANSWERS:
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode() if proc.stderr else "issuer exited"
        lines.append(line)
        assert time.monotonic() < deadline, "too slow"
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    lines += [line for line in rest.splitlines(keepends=True) if line.endswith(b"\n")]
    answered: dict[str, list[int]] = {}
    for line in lines:
        subscriber, rand, autn = line.decode().split()
        ak = f2345(K1, OPC1, bytes.fromhex(rand))[3]
        sqn = int.from_bytes(bytes(a ^ b for a, b in zip(bytes.fromhex(autn)[:6], ak,
                                                            strict=True)), "big")
        answered.setdefault(subscriber, []).append(sqn)
    for sqns in answered.values():
        assert len(sqns) == len(set(sqns))  # never two answers with one SQN
    rt = Runtime.open(load_settings(env={}, home=home))
    try:
        subs = build_services(rt.db, rt.keyring, rt.audit, rt.clock, sinks=[])
        for n in range(SIMS):
            subscriber = imsi(n).value
            after = subs.auth.eps_vectors(Imsi(subscriber, 2), Plmn("001", "01"), 1)[0]
            ak = f2345(K1, OPC1, after.rand)[3]
            fresh = int.from_bytes(bytes(a ^ b for a, b in zip(after.autn[:6], ak,
                                                                strict=True)), "big")
            assert fresh > max(answered.get(subscriber, [0]))
        subs.close()
        assert [] == rt.audit.verify()
    finally:
        rt.close()
