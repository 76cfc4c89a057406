"""``simtrust node``: run one consortium validator process (``docs/network.md``, "Running a node").

The process is a composition of the interfaces layer: a runtime on the
node's data directory, the :class:`~simtrust.ledger.net.ConsortiumNode`
(ledger, consensus core, peer links), and the simtrust HTTP API with the
committee-ordered ledger behind every ledger route, plus the validator's own
routes under ``/v1/ledger/network`` (:data:`validator_router`). Everything
runs on one asyncio loop; SIGTERM/SIGINT stop the API server, then the node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from simtrust.api.app import include_first, warm_routes
from simtrust.api.deps import CurrentPrincipal
from simtrust.cli._validator_fast import serve_fast
from simtrust.config import load_settings
from simtrust.errors import InvalidInput
from simtrust.ledger.net import (
    ConsortiumNode,
    EpochCommittee,
    NetworkGenesis,
    NodeKeys,
    NodeOptions,
    SignedCommitteeChange,
    apply_peer_overrides,
    change_message,
    decode_batch,
    encode_batch,
    parse_address,
    sign_change,
)
from simtrust.runtime import Runtime, settle_gc
from simtrust.store import SqliteDatabase

__all__ = ["NAME", "app", "ensure_api_key", "run_node", "validator_router"]

NAME = "node"

log = logging.getLogger("simtrust.ledger.net")

app = typer.Typer(name=NAME, help="A consortium validator node.", no_args_is_help=True)

# ---------------------------------------------------------------- HTTP routes

validator_router = APIRouter(prefix="/v1/ledger/network", tags=["ledger-network"])


def _node(request: Request) -> ConsortiumNode:
    node: ConsortiumNode = request.app.state.consortium
    return node


# Handlers are async: they run on the loop that owns the node, one caller at a time.


@validator_router.get("/status", summary="Rounds, commits, finalized count, links, peer limits")
async def status(request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    return _node(request).status()


@validator_router.post("/submit", summary="Submit signed messages (u32-length-prefixed batch)")
async def submit(request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    raws = decode_batch(await request.body())
    results = await _node(request).submit_async(raws)
    return {"results": [r.to_json() for r in results]}


@validator_router.get("/parents", summary="Parents by tip selection, for clients that sign")
async def parents(
    request: Request, who: CurrentPrincipal, count: int = Query(4, ge=1, le=8)
) -> dict[str, Any]:
    return {"parents": [p.hex() for p in _node(request).ledger.select_parents(count)]}


@validator_router.get("/finalized", summary="Finalized messages after an order position")
async def finalized(
    request: Request,
    who: CurrentPrincipal,
    after: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=1000),
) -> dict[str, Any]:
    rows = _node(request).ledger.finalized_since(after, limit)
    return {"finalized": [[r["order"], r["message_id"], r["state"]] for r in rows]}


@validator_router.get("/snapshot", summary="Hashes of the UTXO set, tips and finalized order")
async def snapshot(request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    return dict(_node(request).ledger.snapshot()._asdict())


class LinksBody(BaseModel):
    paused: bool


@validator_router.post("/links", summary="Pause (partition this node) or resume its links")
async def links(request: Request, body: LinksBody, who: CurrentPrincipal) -> dict[str, Any]:
    who.require_operator()
    node = _node(request)
    if body.paused:
        node.net.pause()
    else:
        node.net.resume()
    return {"paused": node.net.paused, "links": node.net.connected()}


# ---------------------------------------------------------------- the process


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
    join: EpochCommittee | None = None,
) -> None:
    import uvicorn  # noqa: PLC0415 - heavy optional: the ASGI server, only for commands that serve

    from simtrust.web import create_site  # noqa: PLC0415 - heavy: the API with the dashboard, only where it is served

    settings = dataclasses.replace(load_settings(env={}, home=home), network_id=genesis.network)
    rt = Runtime.initialise(settings)
    if isinstance(rt.db, SqliteDatabase):
        # Commits run on the validator's loop: no log copy and fsync inside them.
        rt.db.checkpoint_in_background()
    try:
        if api_key_file is not None:
            ensure_api_key(rt, api_key_file)
        node = ConsortiumNode(genesis, keys, rt.db, options=options, bind=listen, join=join)
        rt.ledger = node.ledger  # the API serves the validator's ledger, not a second node
        web = create_site(rt, validator=node.status)  # the dashboard shows its health
        include_first(web, validator_router)  # clients and the feed poll these
        serve_fast(web, node, rt)
        web.state.consortium = node
        await warm_routes(web)  # before listening: the first request finds the table built
        host, port = parse_address(api)
        config = uvicorn.Config(web, host=host, port=port, log_level="warning",
                                lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        await node.start()
        settle_gc()
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
    join_file: Path | None = None,
) -> None:
    """Run a validator until SIGTERM/SIGINT (``join_file``: the change that admits it)."""
    genesis = apply_peer_overrides(NetworkGenesis.load(genesis_file), peers or [])
    keys = NodeKeys.load(key_file)
    join: EpochCommittee | None = None
    if join_file is None:
        keys.check_against(genesis)
    else:
        try:
            join = SignedCommitteeChange.from_json(json.loads(join_file.read_text())).target
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read committee change {join_file}: {exc}") from exc
    asyncio.run(_serve(genesis, keys, home, api, api_key_file, listen,
                       options or NodeOptions(), join))


# ---------------------------------------------------------------- the command


@app.command("run")
def run(
    genesis: Annotated[Path, typer.Option("--genesis", help="Genesis file (JSON).")],
    key: Annotated[Path, typer.Option("--key", help="This validator's node key file.")],
    home: Annotated[Path, typer.Option("--home", help="Data directory of this node.")],
    api: Annotated[str, typer.Option("--api", help="HTTP API address HOST:PORT.")] = (
        "127.0.0.1:8700"
    ),
    peers: Annotated[
        list[str] | None,
        typer.Option("--peers", help="Override a peer's P2P address: ID=HOST:PORT (repeat)."),
    ] = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help="Bind P2P here instead of the genesis address.")
    ] = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option("--api-key-file", help="Write a new operator API key here if absent."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log link events.")] = False,
    join: Annotated[
        Path | None,
        typer.Option("--join", help="A validator genesis does not name: the signed committee "
                     "change that admits it (it follows as an observer until then)."),
    ] = None,
) -> None:
    """Run a validator until SIGTERM/SIGINT: ledger, consensus, P2P links, HTTP API."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run_node(genesis, key, home, api=api, api_key_file=api_key_file, peers=peers or [],
             listen=listen, join_file=join)


def _epoch_file(path: Path) -> EpochCommittee:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read committee file {path}: {exc}") from exc
    return EpochCommittee.from_json(data)


@app.command("committee-change")
def committee_change(
    genesis: Annotated[Path, typer.Option("--genesis", help="Genesis file (JSON).")],
    key: Annotated[
        list[Path],
        typer.Option("--key", help="Node key file of a current member who signs (repeat)."),
    ],
    members: Annotated[
        Path | None,
        typer.Option("--members", help='Next committee: {"epoch": N, "validators": [...]}.'),
    ] = None,
    change: Annotated[
        Path | None,
        typer.Option("--change", help="A signed change to add these signatures to."),
    ] = None,
    current: Annotated[
        Path | None,
        typer.Option("--current", help="The current committee (default: genesis, epoch 0)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the signed change here (JSON).")
    ] = None,
    submit: Annotated[
        str | None,
        typer.Option("--submit", help="Submit it as a ledger message to this node API HOST:PORT."),
    ] = None,
    api_key_file: Annotated[
        Path | None, typer.Option("--api-key-file", help="Operator API key of that node.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build or co-sign a committee change for the next epoch, and optionally submit it.

    Each ``--key`` signs with its block key (docs/network.md, "Committee
    changes"); the change takes effect once signers holding more than 2/3
    of the current weight have signed and the message is finalized.
    """
    net = NetworkGenesis.load(genesis)
    now_committee = _epoch_file(current) if current else EpochCommittee.of_genesis(net)
    signers = [NodeKeys.load(p) for p in key]
    if (members is None) == (change is None):
        raise InvalidInput("give exactly one of --members (a new change) or --change")
    if members is not None:
        signed = sign_change(now_committee, _epoch_file(members), signers)
    elif change is not None:
        try:
            existing = SignedCommitteeChange.from_json(json.loads(change.read_text()))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read committee change {change}: {exc}") from exc
        signed = existing.add(now_committee, signers)
    document = json.dumps(signed.to_json(), indent=2) + "\n"
    if out is not None:
        out.write_text(document)
    weight = now_committee.committee().weight_of(s.signer for s in signed.signatures)
    result: dict[str, Any] = {
        "epoch": signed.target.epoch,
        "validators": len(signed.target.validators),
        "signers": [s.signer for s in signed.signatures],
        "signed_weight": weight,
        "total_weight": now_committee.committee().total_weight,
        "supermajority": now_committee.committee().is_quorum(weight),
    }
    if submit is not None:
        if api_key_file is None:
            raise InvalidInput("--submit needs --api-key-file")
        parse_address(submit)
        raw = change_message(net.network, signed, signers[0].ledger_signer(),
                             issued_at_ms=int(time.time() * 1000),
                             parents=[net.ledger_genesis().id])
        token = api_key_file.read_text().strip()
        response = httpx.post(
            f"http://{submit}/v1/ledger/network/submit", content=encode_batch([raw]),
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/octet-stream"},
            timeout=10.0,
        )
        if response.status_code != 200:
            raise InvalidInput(f"the node refused the change: HTTP {response.status_code}")
        result["submitted"] = response.json()["results"][0]
    if as_json:
        typer.echo(json.dumps(result))
    elif out is None and submit is None:
        typer.echo(document, nl=False)
    else:
        typer.echo(f"epoch {result['epoch']} change signed by {result['signers']} "
                   f"({weight}/{result['total_weight']} of the weight)"
                   + (f"; submitted: {result['submitted']['status']}" if submit else ""))
