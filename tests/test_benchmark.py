"""The benchmark contract's shared probes: the disk limit (``fsync_rate``) and where
the CPU went (``machine_busy_s``, ``process_cpu_s``, ``process_run_delay_s``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simtrust.benchmark import (
    _with_children,
    fsync_rate,
    machine_busy_s,
    process_cpu_s,
    process_sched_s,
)


def test_fsync_rate_counts_appends_and_removes_its_probe(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert fsync_rate(tmp_path, 0.05) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_cpu_accounting_reads_this_machine() -> None:
    sum(i * i for i in range(200_000))
    # every process's CPU time since boot is part of the machine's busy time
    assert machine_busy_s() >= process_cpu_s(os.getpid()) > 0
    ran, waited = process_sched_s(os.getpid())
    assert ran > 0
    assert waited >= 0
    child = subprocess.Popen([sys.executable, "-c", "sum(range(3_000_000)); input()"],
                             stdin=subprocess.PIPE, text=True)
    try:
        assert child.pid in _with_children(os.getpid())[1:]
        while child.poll() is None and process_sched_s(child.pid)[0] < 0.01:  # working
            pass
        # the child's time counts only with children=True
        alone = process_sched_s(os.getpid())[0]
        assert process_sched_s(os.getpid(), children=True)[0] >= alone + 0.01
    finally:
        child.communicate("\n")
    assert process_sched_s(child.pid) == (0.0, 0.0)  # a gone process reads 0
