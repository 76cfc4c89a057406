"""Helpers shared by CLI commands: opening the runtime, JSON output, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from simtrust.config import load_settings
from simtrust.errors import InvalidInput
from simtrust.runtime import Runtime

__all__ = [
    "console",
    "emit_json",
    "err_console",
    "open_runtime",
    "progress_bar",
    "read_text",
]

console = Console()
err_console = Console(stderr=True)


def open_runtime(home: Path | None = None) -> Runtime:
    """The runtime of ``home`` (default: ``SIMTRUST_HOME`` or ``~/.simtrust``)."""
    return Runtime.open(load_settings(home=home))


def read_text(path: Path) -> str:
    """A UTF-8 text file (a BOM is dropped); InvalidInput (exit 2) if it is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})",
            field="file",
        ) from None


def emit_json(value: Any) -> None:
    """Print one JSON document on stdout (for scripts)."""
    sys.stdout.write(json.dumps(value, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``advance(n)``. Disabled for --json runs."""
    if not enabled:
        yield lambda n=1: None
        return
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            progress.advance(task, n)

        yield advance
