"""One validator process: runtime, consortium node, HTTP API, all on one event loop.

``simtrust node run`` calls :func:`run_node`. The runtime's ``"ledger"``
extension is set to the consortium node's ledger before the API is built,
so every ledger route (and the explorer) serves the committee-ordered
ledger. SIGTERM/SIGINT stop the API server, then the node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from pathlib import Path

from simtrust.config import load_settings
from simtrust.errors import InvalidInput
from simtrust.ledger.net._genesis import NetworkGenesis, NodeKeys, ValidatorEntry, parse_address
from simtrust.ledger.net._node import ConsortiumNode, NodeOptions
from simtrust.runtime import Runtime

__all__ = ["apply_peer_overrides", "ensure_api_key", "run_node"]

log = logging.getLogger("simtrust.ledger.net")


def apply_peer_overrides(genesis: NetworkGenesis, peers: list[str]) -> NetworkGenesis:
    """Replace P2P addresses: each override is ``ID=HOST:PORT`` (the keys stay pinned)."""
    if not peers:
        return genesis
    entries = list(genesis.validators)
    for item in peers:
        ident, sep, address = item.partition("=")
        if not sep or not ident.isdigit() or int(ident) >= len(entries):
            raise InvalidInput(f"peer override {item!r} is not ID=HOST:PORT for a validator id")
        parse_address(address)
        entry: ValidatorEntry = entries[int(ident)]
        entries[int(ident)] = dataclasses.replace(entry, p2p=address)
    return dataclasses.replace(genesis, validators=tuple(entries))


def ensure_api_key(rt: Runtime, path: Path) -> None:
    """Write a new operator-admin API key to ``path`` (mode 0600) unless it exists."""
    if path.exists():
        return
    with rt.db.transaction():
        created = rt.tenants.create_key("operator-admin", "consortium node operator")
        rt.audit.append(actor="node:run", action="apikey.create",
                        subject=f"apikey:{created.key.id}", outcome="success",
                        details={"role": "operator-admin"})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(created.secret + "\n")


async def _serve(
    genesis: NetworkGenesis,
    keys: NodeKeys,
    home: Path,
    api: str,
    api_key_file: Path | None,
    listen: str | None,
    options: NodeOptions,
) -> None:
    import uvicorn

    from simtrust.api.app import create_app
    from simtrust.ledger.net._api import router

    settings = dataclasses.replace(load_settings(env={}, home=home), network_id=genesis.network)
    rt = Runtime.initialise(settings)
    try:
        if api_key_file is not None:
            ensure_api_key(rt, api_key_file)
        node = ConsortiumNode(genesis, keys, rt.db, options=options, bind=listen)
        rt.extension("ledger", lambda: node.ledger)
        app = create_app(rt)
        app.include_router(router)
        app.state.consortium = node
        host, port = parse_address(api)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        await node.start()
        log.info("validator %s up: api %s p2p %s", node.id, api, listen or node.entry.p2p)
        try:
            await server.serve()
        finally:
            await node.stop()
    finally:
        rt.close()


def run_node(
    genesis_file: Path,
    key_file: Path,
    home: Path,
    *,
    api: str = "127.0.0.1:8700",
    api_key_file: Path | None = None,
    peers: list[str] | None = None,
    listen: str | None = None,
    options: NodeOptions | None = None,
) -> None:
    """Run a validator until SIGTERM/SIGINT."""
    genesis = apply_peer_overrides(NetworkGenesis.load(genesis_file), peers or [])
    keys = NodeKeys.load(key_file)
    keys.check_against(genesis)
    asyncio.run(_serve(genesis, keys, home, api, api_key_file, listen,
                       options or NodeOptions()))
