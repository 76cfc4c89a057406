"""The benchmark contract shared by every ``bench/`` module.

A benchmark module in ``bench/`` defines ``NAME`` (its CLI name), a one-line
``DESCRIPTION`` and ``run(quick: bool) -> BenchResult``. The result prints as
one JSON object::

    {"bench": NAME, "metrics": {...}, "limits": {...}, "ratios": {...},
     "machine": {"cpus": N, "python": "3.x"}}

``limits`` are what this machine's primitives reach in the same run, so the
``ratios`` (metric / limit) stay comparable on shared, drifting machines.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from simtrust.errors import NotFound

__all__ = [
    "BenchResult",
    "bench_dir",
    "discover",
    "fsync_rate",
    "load_bench",
    "machine_busy_s",
    "machine_info",
    "process_cpu_s",
    "process_sched_s",
    "rate",
]


@dataclass(slots=True)
class BenchResult:
    """Figures of one benchmark run; ``notes`` are free-form facts (sizes, store)."""

    bench: str
    metrics: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def ratio(self, name: str, metric: str, limit: str, divisor: float = 1.0) -> None:
        """Record ``metrics[metric] / (limits[limit] / divisor)`` as ``ratios[name]``."""
        bound = self.limits[limit] / divisor
        self.ratios[name] = round(self.metrics[metric] / bound, 4) if bound else 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bench": self.bench,
            "metrics": self.metrics,
            "limits": self.limits,
            "ratios": self.ratios,
            "machine": machine_info(),
        }
        if self.notes:
            out["notes"] = self.notes
        return out


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count() or 1,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def rate(fn: Callable[[], object], *, min_seconds: float = 0.5, batch: int = 100) -> float:
    """Calls per second of ``fn`` measured over at least ``min_seconds``."""
    count = 0
    start = time.perf_counter()
    deadline = start + min_seconds
    while True:
        for _ in range(batch):
            fn()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def fsync_rate(folder: Path, seconds: float) -> float:
    """Appends of 4 KiB each followed by fsync, per second, in ``folder``.

    The disk limit of the benchmarks whose figure waits on a durable commit; the
    probe file is removed afterwards.
    """
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            os.write(fd, bytes(4096))
            os.fsync(fd)
            done += 1
        return done / (time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()


def _with_children(pid: int) -> list[int]:
    """``pid`` and its live child processes (worker processes; Linux /proc)."""
    found = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        with contextlib.suppress(OSError, ValueError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def process_cpu_s(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc); with
    ``children``, plus those of its live child processes (worker processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if children:
        for child in _with_children(pid)[1:]:
            with contextlib.suppress(OSError):
                total += process_cpu_s(child)
    return total


def process_sched_s(pid: int, *, children: bool = False) -> tuple[float, float]:
    """Seconds the live threads of process ``pid`` (with ``children``, of its live
    child processes too) have run on a CPU, and have spent runnable but waiting for
    one (Linux ``/proc/PID/task/TID/schedstat``, in nanoseconds). On a shared
    machine the wait tells a server slowed by other processes on its cores from one
    slowed by its own work. Threads that have ended are not counted (their CPU time
    is in :func:`process_cpu_s`); a gone process reads 0."""
    ran = waited = 0
    for one in _with_children(pid) if children else [pid]:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{one}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    run_ns, wait_ns, _slices = (task / "schedstat").read_text().split()
                    ran += int(run_ns)
                    waited += int(wait_ns)
    return ran / 1e9, waited / 1e9


def machine_busy_s() -> float:
    """CPU seconds all processes on this machine have used, summed over its CPUs
    (Linux ``/proc/stat``: user, nice, system, irq, softirq and steal time)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def bench_dir() -> Path:
    """The ``bench/`` folder of the source tree (``SIMTRUST_BENCH_DIR`` overrides)."""
    override = os.environ.get("SIMTRUST_BENCH_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "bench"


def discover() -> dict[str, Path]:
    """Benchmark name → module file, for every ``bench/bench_*.py``."""
    folder = bench_dir()
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_").replace("_", "-")
        found[name] = path
    return found


def load_bench(name: str) -> ModuleType:
    """Import the benchmark module called ``name`` (e.g. ``ledger-ingest``)."""
    found = discover()
    if name not in found:
        known = ", ".join(found) or "none (is the source tree's bench/ folder present?)"
        raise NotFound(f"no benchmark {name!r}; known: {known}")
    spec = importlib.util.spec_from_file_location(f"simtrust_bench_{name}", found[name])
    if spec is None or spec.loader is None:
        raise NotFound(f"cannot load benchmark {name!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
