"""The ``simtrust`` command line (typer + rich).

Every module in this package that defines ``NAME`` and ``app`` (a
``typer.Typer``) is mounted as ``simtrust NAME``. :func:`main` turns simtrust
errors into one line on stderr and a non-zero exit: 2 for bad input, 1 for
anything else (docs/decisions/foundation-cli-exit-codes.md).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import warnings

import typer

from simtrust.cli._root import app
from simtrust.errors import ConfigError, InvalidInput, Rejected, SimtrustError

__all__ = ["app", "bad_input", "main"]

# TestClient-based demo steps import starlette.testclient, which warns about httpx.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

_CORE = {"_root", "_common", "_bench", "_demo", "_audit", "_keys"}


def _mount_packages() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _CORE or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "NAME", None)
        sub = getattr(module, "app", None)
        if isinstance(name, str) and isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name)


_mount_packages()


def bad_input(exc: SimtrustError) -> bool:
    """Whether the caller's input was at fault (exit 2): invalid values, bytes that do
    not decode (a ledger message rejected for its ``encoding``), and a setting that is
    refused when the settings are read (a ConfigError naming its ``setting``)."""
    return isinstance(exc, InvalidInput) or (
        isinstance(exc, Rejected) and exc.reason == "encoding"
    ) or (isinstance(exc, ConfigError) and "setting" in exc.context)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to one line and an exit code."""
    try:
        code = app(args=argv, prog_name="simtrust", standalone_mode=False)
    except SimtrustError as exc:
        typer.echo(f"simtrust: error: {exc.detail}", err=True)
        sys.exit(2 if bad_input(exc) else 1)
    except UnicodeError as exc:
        typer.echo(f"simtrust: error: input is not valid text ({type(exc).__name__})", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("simtrust: aborted", err=True)
        sys.exit(130)
    except typer.TyperException as exc:
        # Usage errors from the command parser (unknown option, missing argument, ...).
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"simtrust: error: {message}", err=True)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except KeyboardInterrupt:
        typer.echo("simtrust: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        typer.echo(f"simtrust: error: {exc.strerror or exc}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
