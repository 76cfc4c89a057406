"""Local test networks: N validator processes on loopback (``docs/network.md``, "Testnet").

:class:`Testnet` writes a genesis and node keys into a directory, picks free
ports on 127.0.0.1, starts each validator as its own ``simtrust node run``
process and records everything in ``testnet.json`` so ``simtrust testnet
down``/``status`` (another process) find them again. :class:`NodeClient`
talks to one validator's HTTP API with the API key the node wrote for it.
Used by the CLI, the fault tests and the network benchmark.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from simtrust.errors import ConfigError, InvalidInput, NotFound
from simtrust.ledger.net._batch import encode_batch
from simtrust.ledger.net._genesis import ConsensusParams, free_ports, generate_local_network

__all__ = ["NodeClient", "NodeInfo", "Testnet"]

STATE_FILE = "testnet.json"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: int
    api: str
    p2p: str
    home: Path
    key_file: Path
    api_key_file: Path
    log_file: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "api": self.api, "p2p": self.p2p, "home": str(self.home),
            "key_file": str(self.key_file), "api_key_file": str(self.api_key_file),
            "log_file": str(self.log_file),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeInfo:
        return cls(int(data["id"]), str(data["api"]), str(data["p2p"]), Path(data["home"]),
                   Path(data["key_file"]), Path(data["api_key_file"]), Path(data["log_file"]))


class NodeClient:
    """HTTP client of one validator (its operator key read from the node's key file)."""

    def __init__(self, info: NodeInfo, timeout: float = 10.0) -> None:
        self.info = info
        key = info.api_key_file.read_text().strip()
        self.http = httpx.Client(base_url=f"http://{info.api}", timeout=timeout,
                                 headers={"Authorization": f"Bearer {key}"})

    def __repr__(self) -> str:
        return f"NodeClient(validator={self.info.id}, api={self.info.api})"

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, **params: Any) -> Any:
        response = self.http.get(f"/v1/ledger/network/{path}", params=params)
        response.raise_for_status()
        return response.json()

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("status")
        return result

    def snapshot(self) -> dict[str, Any]:
        result: dict[str, Any] = self._get("snapshot")
        return result

    def parents(self, count: int = 4) -> list[bytes]:
        return [bytes.fromhex(p) for p in self._get("parents", count=count)["parents"]]

    def finalized(self, after: int = 0, limit: int = 1000) -> list[tuple[int, bytes, str]]:
        rows = self._get("finalized", after=after, limit=limit)["finalized"]
        return [(int(o), bytes.fromhex(m), str(s)) for o, m, s in rows]

    def finalized_order(self, upto: int | None = None) -> list[bytes]:
        """The whole finalized order (ids), up to position ``upto``."""
        out: list[bytes] = []
        after = 0
        while upto is None or after < upto:
            rows = self.finalized(after)
            if not rows:
                break
            for order, mid, _ in rows:
                if upto is not None and order > upto:
                    return out
                out.append(mid)
                after = order
        return out

    def submit(self, raws: list[bytes]) -> list[dict[str, Any]]:
        response = self.http.post("/v1/ledger/network/submit", content=encode_batch(raws),
                                  headers={"Content-Type": "application/octet-stream"})
        response.raise_for_status()
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def links(self, paused: bool) -> dict[str, Any]:
        response = self.http.post("/v1/ledger/network/links", json={"paused": paused})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def healthy(self) -> bool:
        try:
            return self.http.get("/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Testnet:
    """N local validators under one directory; every process it starts, it can stop."""

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, directory: Path, nodes: list[NodeInfo], network: str) -> None:
        self.directory = directory
        self.nodes = nodes
        self.network = network
        self.genesis_file = directory / "genesis.json"
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def __repr__(self) -> str:
        return f"Testnet({str(self.directory)!r}, validators={len(self.nodes)})"

    @classmethod
    def create(
        cls,
        directory: Path,
        count: int,
        *,
        funded: list[bytes] | None = None,
        consensus: ConsensusParams | None = None,
        host: str = "127.0.0.1",
        token_issuers: list[bytes] | None = None,
    ) -> Testnet:
        if (directory / STATE_FILE).exists():
            raise ConfigError(f"a testnet already exists in {directory}")
        ports = free_ports(2 * count, host)
        genesis, key_files = generate_local_network(
            count, directory, ports=ports[:count], funded=funded, consensus=consensus, host=host,
            token_issuers=token_issuers,
        )
        nodes = []
        for i, key_file in enumerate(key_files):
            node_dir = key_file.parent
            nodes.append(NodeInfo(
                i, f"{host}:{ports[count + i]}", genesis.validators[i].p2p, node_dir / "home",
                key_file, node_dir / "api-key", node_dir / "node.log",
            ))
        net = cls(directory, nodes, genesis.network)
        net._save({})
        return net

    @classmethod
    def load(cls, directory: Path) -> Testnet:
        path = directory / STATE_FILE
        if not path.exists():
            raise NotFound(f"no testnet in {directory}")
        data = json.loads(path.read_text())
        return cls(directory, [NodeInfo.from_json(n) for n in data["nodes"]], data["network"])

    def _save(self, pids: dict[int, int]) -> None:
        data = {"network": self.network, "nodes": [n.to_json() for n in self.nodes],
                "pids": {str(k): v for k, v in pids.items()}}
        (self.directory / STATE_FILE).write_text(json.dumps(data, indent=2) + "\n")

    def _pids(self) -> dict[int, int]:
        data = json.loads((self.directory / STATE_FILE).read_text())
        return {int(k): int(v) for k, v in data.get("pids", {}).items()}

    def command(self, node: int) -> list[str]:
        info = self.nodes[node]
        return [
            sys.executable, "-m", "simtrust", "node", "run",
            "--genesis", str(self.genesis_file), "--key", str(info.key_file),
            "--home", str(info.home), "--api", info.api,
            "--api-key-file", str(info.api_key_file),
        ]

    # -- processes ---------------------------------------------------------

    def start(self, node: int, *, detach: bool = False) -> int:
        """Start validator ``node``; returns its pid."""
        info = self.nodes[node]
        if node in self.procs and self.procs[node].poll() is None:
            raise InvalidInput(f"validator {node} is already running")
        env = dict(os.environ)
        env.pop("SIMTRUST_CONFIG", None)
        log = info.log_file.open("ab")
        try:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self.command(node), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=detach,
            )
        finally:
            log.close()
        self.procs[node] = proc
        pids = self._pids()
        pids[node] = proc.pid
        self._save(pids)
        return proc.pid

    def up(self, *, detach: bool = False, timeout: float = 60.0) -> None:
        for i in range(len(self.nodes)):
            self.start(i, detach=detach)
        self.wait_ready(timeout=timeout)

    def wait_ready(self, nodes: list[int] | None = None, timeout: float = 60.0) -> None:
        """Wait until each node answers its health check (its API key exists by then)."""
        deadline = time.monotonic() + timeout
        for i in nodes if nodes is not None else range(len(self.nodes)):
            info = self.nodes[i]
            while True:
                proc = self.procs.get(i)
                if proc is not None and proc.poll() is not None:
                    raise ConfigError(
                        f"validator {i} exited with {proc.returncode}; see {info.log_file}"
                    )
                if info.api_key_file.exists():
                    client = NodeClient(info, timeout=2.0)
                    try:
                        if client.healthy():
                            break
                    finally:
                        client.close()
                if time.monotonic() > deadline:
                    raise ConfigError(f"validator {i} not ready after {timeout} s")
                time.sleep(0.1)

    def signal(self, node: int, sig: int) -> None:
        """Send ``sig`` to validator ``node`` (a process this testnet started)."""
        pid = self._pid_of(node)
        if pid is not None:
            os.kill(pid, sig)

    def _pid_of(self, node: int) -> int | None:
        proc = self.procs.get(node)
        if proc is not None:
            return proc.pid if proc.poll() is None else None
        pid = self._pids().get(node)
        if pid is None:
            return None
        # A pid from the state file counts only if it still runs this node's command.
        if str(self.nodes[node].key_file) not in _cmdline(pid):
            return None
        return pid

    def kill(self, node: int) -> None:
        """SIGKILL validator ``node`` and reap it."""
        self.signal(node, signal.SIGKILL)
        proc = self.procs.get(node)
        if proc is not None:
            proc.wait(timeout=10)

    def stop(self, node: int, timeout: float = 10.0) -> None:
        pid = self._pid_of(node)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        proc = self.procs.get(node)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return
            if proc is None and not _cmdline(pid):
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=10)

    def down(self) -> None:
        for i in range(len(self.nodes)):
            try:
                self.stop(i)
            except ProcessLookupError:
                continue
        self._save({})

    def running(self, node: int) -> bool:
        return self._pid_of(node) is not None

    def client(self, node: int) -> NodeClient:
        return NodeClient(self.nodes[node])
