"""Helpers shared by CLI commands: opening the runtime, JSON output, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
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
from rich.table import Column

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
def progress_bar(
    description: str, total: int | None, enabled: bool = True, *,
    unit: str | None = None, target: Console | None = None,
) -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr; yields ``advance(n=1, completed=None)``.

    Disabled for --json runs. Counts, rate and times never wrap or get cut: the bar
    takes what width is left (at least 10 columns) and the description is
    shortened first, so an 80-column terminal still shows ``done/total``. Give the
    ``total`` whenever it is known (no ``?``). ``unit`` adds a rate column.
    """
    if not enabled:
        yield lambda n=1, completed=None: None
        return
    def fixed() -> Column:
        return Column(no_wrap=True, overflow="ignore")

    columns: list[Any] = [
        TextColumn("[bold]{task.description}",
                   table_column=Column(no_wrap=True, overflow="ellipsis", max_width=32)),
        BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=10)),
        MofNCompleteColumn(table_column=fixed()),
    ]
    if unit is not None:
        columns.append(TextColumn("{task.fields[rate]} " + unit + "/s",
                                  table_column=fixed()))
    columns += [TimeElapsedColumn(table_column=fixed()),
                TimeRemainingColumn(table_column=fixed())]
    with Progress(*columns, console=target or err_console, transient=False,
                  expand=True) as progress:
        task = progress.add_task(description, total=total, rate="-")

        def advance(n: int = 1, completed: int | None = None) -> None:
            if completed is None:
                progress.advance(task, n)
            else:
                progress.update(task, completed=completed)
            if unit is not None:
                speed = progress.tasks[task].speed
                progress.update(task, rate=f"{speed:,.0f}" if speed else "-")

        yield advance
