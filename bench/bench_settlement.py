"""Roaming reconciliation of one month on one core, next to the raw CSV-parse rate.

Figures (issue 15): ``metrics.records_per_s`` (records of one side reconciled per
second: both files read, every record classified, the statement rated),
``metrics.seconds`` and ``metrics.peak_rss_bytes`` of the reconciling process,
``limits.csv_parse_per_s`` (the same reader parsing every column of one side's
file into typed columns, nothing else) and ``ratios.reconcile_to_parse``;
``metrics.cpu_seconds`` is the reconciling child's CPU time, which a busy
neighbour on the same CPU does not inflate.
Both measurements run in a child pinned to one CPU with ``POLARS_MAX_THREADS=1``.

Contract transitions (issue 15): four validators in one event loop over
loopback TCP, each with its contract engine; 300 roaming-agreement contracts
(10 with ``--quick``), each a create and a transition signed by both parties,
submitted round-robin. ``metrics.contract_transitions_per_s`` (finalized
contract messages per second), ``metrics.contract_finality_p50_s`` and
``_p99_s`` (submission to finality on validator 0), next to
``limits.ed25519_verify_per_s`` (one core); the run fails unless every
validator's engine ends with the same state.

The files (10,000,000 records per side; 20,000 with ``--quick``) carry 1 % of
each discrepancy class: partial pairs, visited-only, home-only, duplicates on
each side and out-of-agreement pairs (validity, unknown service, foreign PLMN);
matched pairs differ within the tolerance. They are generated once and cached
in the temp directory. The run checks that every class count is the injected one.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from simtrust.benchmark import BenchResult, rate
from simtrust.identity import did_key
from simtrust.ledger import (
    Ed25519Signer,
    message_id,
    network_id_from_name,
    payload_code,
    signing_bytes,
    verify_ed25519,
)
from simtrust.ledger.net import (
    ConsensusParams,
    ConsortiumNode,
    NodeKeys,
    NodeOptions,
    generate_local_network,
)
from simtrust.settlement import (
    ContractEngine,
    code_hash,
    create_payload,
    roaming_agreement_code,
    state_hash,
    transition_payload,
)
from simtrust.store import SqliteDatabase

NAME = "settlement"
DESCRIPTION = "reconcile 10M usage records per side on one core vs raw CSV parse rate"

_FULL = 10_000_000
_QUICK = 20_000
_VERSION = 1
_START = 1767225600  # 2026-01-01T00:00:00Z
_MONTH = 31 * 86400

AGREEMENT = {
    "id": "bench-26201-20810",
    "home_plmn": "26201",
    "visited_plmn": "20810",
    "valid_from": "2026-01-01T00:00:00Z",
    "valid_until": "2026-02-01T00:00:00Z",
    "currency": "EUR",
    "tolerance_percent": 2,
    "tariffs": {"data_per_mb": 150, "sms_per_event": 5, "voice_per_minute": 20},
}


def _generate(n: int, folder: Path) -> dict[str, int]:
    """Write ``home.csv`` and ``visited.csv`` with ``n`` records each; return expected counts."""

    rng = np.random.default_rng(15)
    share = max(1, n // 100)
    matched = n - 4 * share
    pairs = matched + 2 * share  # matched, partial and out-of-agreement pairs
    total_keys = pairs + 2 * share  # plus home-only and visited-only
    charging = rng.permutation(total_keys).astype(np.int64) + 100_000_000
    imsi = 262_010_000_000_000 + rng.integers(0, 10**9, total_keys)
    service = rng.choice(np.array(["data", "sms", "voice"]), total_keys, p=[0.7, 0.2, 0.1])
    start = _START + rng.integers(0, _MONTH, total_keys)
    duration = rng.integers(1, 3600, total_keys)
    up = rng.integers(0, 10**7, total_keys)
    down = rng.integers(1_000, 10**8, total_keys)
    events = rng.integers(1, 20, total_keys)
    visited_plmn = np.full(total_keys, "20810", dtype=object)
    # Pairs [matched, matched+share) are partial, the next share are out of agreement.
    partial = slice(matched, matched + share)
    outside = np.arange(matched + share, pairs)
    thirds = np.array_split(outside, 3)
    start[thirds[0]] = _START + _MONTH + rng.integers(0, 86400, len(thirds[0]))
    service[thirds[1]] = "mms"
    visited_plmn[thirds[2]] = "23415"
    base = pl.DataFrame(
        {
            "charging_id": charging,
            "imsi": imsi,
            "visited_plmn": visited_plmn.astype(str),
            "home_plmn": np.full(total_keys, "26201"),
            "service": service,
            "start": pl.from_epoch(pl.Series(start), time_unit="s").dt.strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "duration_s": duration,
            "bytes_up": up,
            "bytes_down": down,
            "events": events,
        }
    )
    # The home side's view: within 1 % on matched pairs (tolerance 2 %), far off on partial.
    factor = np.ones(total_keys)
    factor[:matched] = 1 + rng.integers(-100, 101, matched) / 10_000
    factor[partial] = 1.5
    home_view = base.with_columns(
        (pl.col(c) * pl.Series(factor)).round().cast(pl.Int64).alias(c)
        for c in ("duration_s", "bytes_up", "bytes_down", "events")
    )
    home = home_view[: pairs + share]  # pairs and home-only
    visited = pl.concat([base[:pairs], base[pairs + share :]])  # pairs and visited-only
    sides = {"home": home, "visited": visited}
    for name, frame in sides.items():
        shuffled = frame.sample(fraction=1.0, shuffle=True, seed=len(name))
        repeats = shuffled.sample(n=share, seed=7)  # later copies of distinct keys
        pl.concat([shuffled, repeats]).write_csv(folder / f"{name}.csv")
    (folder / "agreement.json").write_text(json.dumps(AGREEMENT))
    return {
        "matched": 2 * matched,
        "partial": 2 * share,
        "visited-only": share,
        "home-only": share,
        "duplicate": 2 * share,
        "out-of-agreement": 2 * share,
    }


def _dataset(n: int) -> tuple[Path, dict[str, int]]:
    folder = Path(tempfile.gettempdir()) / f"simtrust-bench-settlement-v{_VERSION}-{n}"
    expected_file = folder / "expected.json"
    if not expected_file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        expected = _generate(n, folder)
        expected_file.write_text(json.dumps(expected))
    return folder, json.loads(expected_file.read_text())


_CHILD = r"""
import json, os, resource, sys, time
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
folder, task = sys.argv[1], sys.argv[2]
from pathlib import Path
import polars as pl
from simtrust.settlement import load_agreement, reconcile_files, USAGE_COLUMNS
path = Path(folder)
began = time.perf_counter()
if task == "reconcile":
    result = reconcile_files(load_agreement(path / "agreement.json"),
                             path / "home.csv", path / "visited.csv").to_json()
else:
    counts = {c: pl.Int64 for c in ("duration_s", "bytes_up", "bytes_down", "events")}
    schema = {c: counts.get(c, pl.String) for c in USAGE_COLUMNS}
    frame = pl.scan_csv(path / "home.csv", schema=schema)
    result = frame.select(pl.len(), *[pl.col(c).null_count() for c in USAGE_COLUMNS]).collect(
        engine="streaming").row(0)
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "result": result, "peak_rss_bytes": peak}))
"""


def _child(folder: Path, task: str) -> tuple[dict[str, Any], int, float]:
    """Run ``task`` in a one-CPU child: its report, peak RSS (bytes) and CPU seconds.

    The peak is the child's own (``RUSAGE_SELF`` read inside it): ``RUSAGE_CHILDREN`` of
    this process would report the largest of every child waited for so far, the parse
    child included.
    """
    # The child imports polars itself (the parse limit), so it gets the allocator setting
    # simtrust.settlement gives polars before loading it (settlement._reconcile.JEMALLOC_CONF).
    env = dict(os.environ, POLARS_MAX_THREADS="1",
               _RJEM_MALLOC_CONF="dirty_decay_ms:0,muzzy_decay_ms:0")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), task],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    report = json.loads(done.stdout)
    return report, int(report["peak_rss_bytes"]), cpu


def run(quick: bool) -> BenchResult:
    n = _QUICK if quick else _FULL
    generated = time.perf_counter()
    folder, expected = _dataset(n)
    generated = time.perf_counter() - generated
    parse, _, _ = _child(folder, "parse")
    reconcile, peak, cpu = _child(folder, "reconcile")
    counts = reconcile["result"]["counts"]
    if counts != expected:
        raise RuntimeError(f"reconciliation counts {counts} differ from injected {expected}")
    result = BenchResult(bench=NAME)
    rows = parse["result"][0]
    result.metrics["records_per_s"] = round(n / reconcile["seconds"], 1)
    result.metrics["seconds"] = round(reconcile["seconds"], 3)
    result.metrics["peak_rss_bytes"] = float(peak)
    # CPU time of the whole child (interpreter start included): on a shared machine the
    # wall time also counts the waits for the one CPU it is pinned to.
    result.metrics["cpu_seconds"] = round(cpu, 3)
    result.limits["csv_parse_per_s"] = round(rows / parse["seconds"], 1)
    result.limits["seconds"] = 100.0
    result.limits["peak_rss_bytes"] = float(2 << 30)
    result.ratio("reconcile_to_parse", "records_per_s", "csv_parse_per_s")
    contracts = _contracts_on_testnet(_CONTRACTS_QUICK if quick else _CONTRACTS_FULL)
    result.metrics.update(contracts)
    signer = Ed25519Signer(bytes(32))
    signature = signer.sign(b"x" * 64)
    result.limits["ed25519_verify_per_s"] = round(
        rate(lambda: verify_ed25519(signer.public_key, signature, b"x" * 64)), 1)
    # Each transition is verified by four validators (message) and four engines (parties).
    result.ratio("contracts_to_verify", "contract_transitions_per_s", "ed25519_verify_per_s")
    result.notes.update(
        records_per_side=n,
        total_minor_units=reconcile["result"]["statement"]["total_minor_units"],
        disputed_minor_units=reconcile["result"]["statement"]["disputed_minor_units"],
        counts=counts,
        generate_seconds=round(generated, 1),
        threads=1,
    )
    return result


# ---------------------------------------------------------------- contracts on four validators

_CONTRACTS_FULL = 300
_CONTRACTS_QUICK = 10


def _contract_messages(network: str, genesis_id: bytes, count: int) -> list[list[bytes]]:
    """Per contract: a create and a sign transition (the sign approves the create)."""
    client, home, visited = (Ed25519Signer(bytes([n]) * 32) for n in (21, 22, 23))
    code = code_hash(roaming_agreement_code)
    nid = network_id_from_name(network)
    kind = payload_code("contract")
    chains = []
    for n in range(count):
        initial = {"agreement": {"id": f"ra-{n}"}, "signed": [], "status": "proposed",
                   "parties": {"home": did_key(home.public_key),
                               "visited": did_key(visited.public_key)}}
        name = f"ra-{n}"
        first = state_hash(name, code, 0, initial)
        chain, parent = [], genesis_id
        for payload in (create_payload(name, code, initial),
                        transition_payload(name, first, {"action": "sign"}, [home, visited])):
            body = signing_bytes(nid, client.public_key, int(time.time() * 1000), [parent], kind,
                                 payload)
            chain.append(body + client.sign(body))
            parent = message_id(chain[-1])
        chains.append(chain)
    return chains


def _contracts_on_testnet(count: int) -> dict[str, float]:
    """Submit ``count`` contracts (create + sign) round-robin to four validators; finality."""
    with tempfile.TemporaryDirectory(prefix="simtrust-bench-contracts-") as name:
        folder = Path(name)
        genesis, paths = generate_local_network(
            4, folder / "net", consensus=ConsensusParams(leader_timeout_ms=500,
                                                         min_round_interval_ms=50))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        def call(coro: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(coro, loop).result(120)

        dbs = [SqliteDatabase(folder / f"node-{i}.db") for i in range(4)]
        nodes = [ConsortiumNode(genesis, NodeKeys.load(p), db,
                                options=NodeOptions(rebroadcast_s=0.2, retry_s=0.1))
                 for p, db in zip(paths, dbs, strict=True)]
        engines = [ContractEngine([roaming_agreement_code]) for _ in nodes]
        for engine, node in zip(engines, nodes, strict=True):
            engine.attach(node.ledger)
        try:
            for node in nodes:
                call(node.start())
            chains = _contract_messages(genesis.network, genesis.ledger_genesis().id, count)
            submitted: dict[bytes, float] = {}
            began = time.perf_counter()
            for index, chain in enumerate(chains):
                async def send(raws: list[bytes] = chain, target: int = index % 4) -> None:
                    nodes[target].submit(raws)

                for raw in chain:
                    submitted[message_id(raw)] = time.perf_counter()
                call(send())
            finalized: dict[bytes, float] = {}
            after = 0
            deadline = time.monotonic() + 600
            while len(finalized) < len(submitted):
                async def poll(start: int = after) -> list[dict[str, Any]]:
                    rows: list[dict[str, Any]] = nodes[0].ledger.finalized_since(start, 1000)
                    return rows

                rows = call(poll())
                now = time.perf_counter()
                for row in rows:
                    finalized.setdefault(bytes.fromhex(row["message_id"]), now)
                    after = row["order"]
                if time.monotonic() > deadline:
                    raise RuntimeError("contract transitions did not finalize in 600 s")
                time.sleep(0.02)
            elapsed = time.perf_counter() - began

            async def counts() -> list[int]:
                return [n.finalized_count() for n in nodes]

            while min(call(counts())) < len(submitted):
                time.sleep(0.05)
            prints = {e.fingerprint() for e in engines}
            if len(prints) != 1 or engines[0].state("ra-0")["state"]["status"] != "active":
                raise RuntimeError("validators disagree on contract state")
        finally:
            for node in nodes:
                call(node.stop())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            for db in dbs:
                db.close()
    latencies = sorted(finalized[m] - submitted[m] for m in submitted)

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "contract_transitions_per_s": round(len(submitted) / elapsed, 1),
        "contract_finality_p50_s": round(percentile(0.5), 4),
        "contract_finality_p99_s": round(percentile(0.99), 4),
    }
