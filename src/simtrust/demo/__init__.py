"""The end-to-end demo: every capability, in order, on a fresh SQLite data directory.

Each module in this package with ``ORDER`` and ``run(ctx) -> dict`` is one
step; steps share ``ctx.data`` (the tenant, keys and objects earlier steps
made). A step's returned dict is its section of the report. A step that raises
marks the report failed; later steps still run when they do not depend on it.
"""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simtrust.runtime import Runtime

__all__ = ["DemoContext", "run_demo", "steps"]


@dataclass
class DemoContext:
    """What a step gets: the runtime, a way to narrate, and shared data."""

    rt: Runtime
    home: Path
    say: Callable[[str], None]
    data: dict[str, Any] = field(default_factory=dict)


def steps() -> list[tuple[int, str, Any]]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "ORDER") and hasattr(module, "run"):
            found.append((int(module.ORDER), info.name, module))
    return sorted(found, key=lambda item: (item[0], item[1]))


def run_demo(home: Path | None = None, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every step; return the report (``ok`` false if any step failed)."""
    quiet = say is None
    narrate: Callable[[str], None] = (lambda text: None) if say is None else say
    workdir = home or Path(tempfile.mkdtemp(prefix="simtrust-demo-"))
    rt = Runtime.ephemeral(workdir)
    ctx = DemoContext(rt=rt, home=workdir, say=narrate)
    report: dict[str, Any] = {"home": str(workdir), "store": "sqlite", "sections": [], "ok": True}
    try:
        for order, name, module in steps():
            title = (module.__doc__ or name).strip().splitlines()[0]
            if not quiet:
                narrate(f"\n[bold cyan]== {order:02d} {name}: {title}[/bold cyan]")
            started = time.perf_counter()
            section: dict[str, Any] = {"step": name, "title": title}
            try:
                section["result"] = module.run(ctx)
                section["ok"] = True
            except Exception as exc:  # noqa: BLE001 - the report names the failed step
                section["ok"] = False
                section["error"] = f"{type(exc).__name__}: {exc}"
                report["ok"] = False
                if not quiet:
                    narrate(f"[red]step failed: {section['error']}[/red]")
                    narrate(traceback.format_exc())
            section["seconds"] = round(time.perf_counter() - started, 3)
            report["sections"].append(section)
    finally:
        rt.close()
    if not quiet:
        status = "[green]all steps passed[/green]" if report["ok"] else "[red]failed[/red]"
        narrate(f"\ndemo finished: {status} (data in {workdir})")
    return report
