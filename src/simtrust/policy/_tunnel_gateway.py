"""Keeping a gateway's tunnels equal to the enterprise APNs (issue 21: tunnels "set up and
torn down by the operator as the enterprise's APN changes").

:meth:`TunnelGateway.apply` takes the full set of :class:`TunnelSpec` the gateway must run
and makes charon and nftables match it:

1. ``swanctl.conf`` rendered into the gateway's swanctl directory and loaded with
   ``swanctl --load-all --clear`` (swanctl(8): connections no longer in the file are
   unloaded, credentials reloaded from ``x509/``, ``x509ca/``, ``private/``);
2. the IKE SAs of tunnels that were removed are terminated (unloading a connection
   leaves its SAs up);
3. the guard table replaced in one nftables transaction (``table``/``delete table``/
   definition, so a reload never doubles the rules and never leaves a gap).

The names applied last are kept in ``applied.json`` of the directory, so a later process
(the CLI) knows which tunnels to tear down. Commands run inside the gateway's network
namespace when one is named. Failures of
swanctl or nft raise :class:`TunnelApplyError` with the tool's last line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simtrust.errors import SimtrustError
from simtrust.policy._tunnels import TunnelSpec, render_swanctl, render_tunnel_guard

__all__ = ["TunnelApplyError", "TunnelChange", "TunnelGateway"]


class TunnelApplyError(SimtrustError):
    """swanctl or nft refused the rendered configuration."""

    code = "tunnel-apply-failed"
    status = 502


@dataclass(frozen=True, slots=True)
class TunnelChange:
    """What one :meth:`TunnelGateway.apply` did."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    kept: tuple[str, ...]


class TunnelGateway:
    """One gateway: its charon (VICI URI), swanctl directory and network namespace."""

    def __init__(self, directory: Path, *, vici_uri: str, netns: str | None = None,
                 table: str = "simtrust_tunnels") -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", table):
            raise ValueError("nftables table name is [a-z][a-z0-9_]*")
        if netns is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", netns):
            raise ValueError("network namespace name is [A-Za-z0-9_.-]")
        self.directory = directory
        self._uri = vici_uri
        self._netns = netns
        self._table = table
        self._state = directory / "applied.json"
        self._running: set[str] = set()
        if self._state.exists():  # what the previous apply (maybe another process) left
            try:
                names = json.loads(self._state.read_text())
            except (OSError, ValueError):
                names = []
            self._running = {n for n in names if isinstance(n, str)}

    def __repr__(self) -> str:
        return f"TunnelGateway({self.directory}, {len(self._running)} tunnels)"

    @property
    def tunnels(self) -> list[str]:
        return sorted(self._running)

    def _run(self, argv: list[str], *, stdin: str | None = None) -> str:
        prefix = ["ip", "netns", "exec", self._netns] if self._netns else []
        env = {**os.environ, "SWANCTL_DIR": str(self.directory)}
        done = subprocess.run(  # noqa: S603 - fixed tools; names and paths are validated
            [*prefix, *argv], input=stdin, capture_output=True, text=True, timeout=60,
            env=env, check=False)
        if done.returncode != 0:
            lines = [ln for ln in (done.stderr + done.stdout).splitlines()
                     if ln.strip() and "plugin '" not in ln]
            raise TunnelApplyError(f"{argv[0]} failed: {lines[-1] if lines else done.returncode}",
                                   reason="tunnel-apply")
        return done.stdout

    def apply(self, specs: Sequence[TunnelSpec]) -> TunnelChange:
        """Make the gateway run exactly ``specs`` (initiated at load)."""
        wanted = {s.name: s for s in specs}
        if len(wanted) != len(specs):
            raise TunnelApplyError("two tunnels share a name", reason="tunnel-apply")
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "swanctl.conf"
        conf.touch(mode=0o600)  # PSKs are rendered into it
        conf.write_text(render_swanctl(list(wanted.values()), start=True))
        self._run(["swanctl", "--load-all", "--clear", "--noprompt", "--file", str(conf),
                   "--uri", self._uri])
        removed = sorted(set(self._running) - set(wanted))
        for name in removed:
            # No SA may be left (swanctl answers non-zero when there was none).
            with contextlib.suppress(TunnelApplyError):
                self._run(["swanctl", "--terminate", "--ike", name, "--force",
                           "--timeout", "10", "--uri", self._uri])
        guard = render_tunnel_guard(list(wanted.values()), table=self._table)
        self._run(["nft", "-f", "-"], stdin=f"table inet {self._table}\n"
                  f"delete table inet {self._table}\n{guard}")
        added = sorted(set(wanted) - set(self._running))
        kept = sorted(set(wanted) & set(self._running))
        self._running = set(wanted)
        self._state.write_text(json.dumps(sorted(wanted)))
        return TunnelChange(tuple(added), tuple(removed), tuple(kept))
