"""The consortium's validators as the operator's dashboard sees them: each validator's own
status (``GET /v1/ledger/network/status`` of ``simtrust node run``), asked over HTTP.

``simtrust serve`` is not a validator itself; with ``ledger_validators`` set
(``HOST:PORT=KEY_FILE``, config.py) the ledger page asks each listed validator,
concurrently and with a short timeout, for its rounds, commits, links and the
per-stage finality probe (docs/consensus.md §15). A validator that does not
answer is shown as unreachable with the kind of failure; the operator key read
from its file goes only into the request header, never into a page or a log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["STAGES", "ValidatorReport", "ask_validators", "health"]

#: The finality probe's stages (docs/consensus.md §15), in the order they happen.
STAGES = ("admit_to_propose", "propose_to_commit", "commit_to_apply", "admit_to_apply")
_TIMEOUT_S = 2.0
_IN_STEP = 3
_BEHIND = 50


@dataclass(frozen=True, slots=True)
class ValidatorReport:
    """One validator's answer: its status, or why there is none (``error``)."""

    address: str
    status: dict[str, Any] | None
    error: str = ""


def health(behind: int) -> str:
    """``in step`` (≤ 3 rounds behind the highest), ``behind`` (≤ 50), else ``far behind``."""
    if behind <= _IN_STEP:
        return "in step"
    return "behind" if behind <= _BEHIND else "far behind"


async def _ask(client: httpx.AsyncClient, address: str, key_file: Path) -> ValidatorReport:
    try:
        key = key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        return ValidatorReport(address, None, f"cannot read its key file ({exc.strerror})")
    try:
        answer = await client.get(f"http://{address}/v1/ledger/network/status",
                                  headers={"Authorization": f"Bearer {key}"})
    except httpx.TimeoutException:
        return ValidatorReport(address, None, "no answer within 2 s")
    except httpx.HTTPError as exc:
        return ValidatorReport(address, None, f"unreachable ({type(exc).__name__})")
    if answer.status_code != 200:
        return ValidatorReport(address, None, f"answered HTTP {answer.status_code}")
    try:
        status = answer.json()
    except ValueError:
        return ValidatorReport(address, None, "answered something that is not JSON")
    if not isinstance(status, dict) or not isinstance(status.get("round"), int):
        return ValidatorReport(address, None, "answered without a validator status")
    return ValidatorReport(address, status)


async def ask_validators(endpoints: tuple[tuple[str, Path], ...]) -> list[ValidatorReport]:
    """Every listed validator's status, asked at once (each bounded by a 2 s timeout)."""
    async with httpx.AsyncClient(timeout=_TIMEOUT_S, trust_env=False) as client:
        return list(await asyncio.gather(*(_ask(client, a, k) for a, k in endpoints)))
