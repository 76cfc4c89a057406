"""Composite operations of LwM2M 1.2 (OMA-TS-LightweightM2M_Core-V1_2: Read-Composite,
Write-Composite, Observe-Composite; Transport V1_2 maps them to CoAP FETCH and iPATCH on
the root path, RFC 8132 §2 and §3): one request names or writes resources of several
objects at once, in SenML-JSON or SenML-CBOR (RFC 8428) only.

- Read-Composite: FETCH ``/`` with the paths as SenML records without values
  (:func:`~simtrust.devices._content.encode_paths`), Accept the same format; the answer is
  a SenML pack of the values under those paths.
- Write-Composite: iPATCH ``/`` with a SenML pack of values (resources of any objects);
  2.04 Changed.
- Observe-Composite: the Read-Composite FETCH with Observe 0; every notification is a
  SenML pack of the observed paths. A notification larger than one block is fetched to
  its end with the same FETCH body (RFC 8132 §2.3.2 with RFC 7959 §3.4).

Values read or notified update the registration and reach the report listeners as a
plain Read's do (inventory, fraud checks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from simtrust.devices._blockwise import BodyTooLarge, fetch_rest
from simtrust.devices._coap import Code, Message, Opt, uint_option
from simtrust.devices._content import (
    CF_SENML_CBOR,
    CF_SENML_JSON,
    decode_content,
    encode_content,
    encode_paths,
)
from simtrust.devices._objects import Path, Value
from simtrust.devices._server import DeviceManager
from simtrust.devices._transport import Peer
from simtrust.errors import DecodeError, InvalidInput

__all__ = ["observe_composite", "read_composite", "write_composite"]

_MAX_PATHS = 64


def _format(fmt: int) -> int:
    if fmt not in (CF_SENML_JSON, CF_SENML_CBOR):
        raise InvalidInput("composite operations use SenML-JSON (110) or SenML-CBOR (112)",
                           field="format")
    return fmt


def _paths(paths: Sequence[Path]) -> list[Path]:
    if not 1 <= len(paths) <= _MAX_PATHS:
        raise InvalidInput(f"a composite operation names 1 to {_MAX_PATHS} paths",
                           field="paths")
    return list(dict.fromkeys(paths))


def _under(values: Mapping[Path, Value], paths: Sequence[Path]) -> dict[Path, Value]:
    """Only what lies under a requested path (a device must not slip in other values)."""
    return {p: v for p, v in values.items() if any(p[:len(q)] == q for q in paths)}


async def read_composite(manager: DeviceManager, endpoint: str, paths: Sequence[Path], *,
                         fmt: int = CF_SENML_CBOR, timeout: float = 60.0) -> dict[Path, Value]:
    """Read-Composite: the values under each of ``paths`` in one exchange."""
    wanted = _paths(paths)
    body = encode_paths(_format(fmt), wanted)
    resp = manager.check(await manager.send(endpoint, Code.FETCH, (), payload=body,
                                            content_format=fmt, accept=fmt, timeout=timeout),
                         "read-composite")
    values = _under(decode_content(resp.content_format, resp.payload, ()), wanted)
    manager.learn(endpoint, values)
    return values


async def write_composite(manager: DeviceManager, endpoint: str,
                          values: Mapping[Path, Value], *, fmt: int = CF_SENML_CBOR,
                          timeout: float = 60.0) -> None:
    """Write-Composite: resources of several objects in one iPATCH."""
    if not 1 <= len(values) <= _MAX_PATHS or any(len(p) < 3 for p in values):
        raise InvalidInput(f"a composite write names 1 to {_MAX_PATHS} resources",
                           field="values")
    body = encode_content(_format(fmt), values, ())
    manager.check(await manager.send(endpoint, Code.IPATCH, (), payload=body,
                                     content_format=fmt, timeout=timeout), "write-composite")


async def observe_composite(manager: DeviceManager, endpoint: str, paths: Sequence[Path],
                            callback: Callable[[dict[Path, Value]], None], *,
                            fmt: int = CF_SENML_CBOR, timeout: float = 60.0) -> bytes:
    """Observe-Composite: the current values go to ``callback``, then each notification;
    returns the token to cancel with (:meth:`DeviceManager.cancel_observation`)."""
    wanted = _paths(paths)
    body = encode_paths(_format(fmt), wanted)
    joining: set[asyncio.Task[None]] = set()

    def deliver(msg: Message) -> None:
        try:
            values = _under(decode_content(msg.content_format, msg.payload, ()), wanted)
        except DecodeError:
            manager.endpoint.counters.malformed += 1
            return
        manager.learn(endpoint, values)
        callback(values)

    async def join(peer: Peer, msg: Message) -> None:
        request = ((Opt.CONTENT_FORMAT, uint_option(fmt)), (Opt.ACCEPT, uint_option(fmt)))
        try:
            deliver(await fetch_rest(manager.endpoint, peer, request, msg, timeout=timeout,
                                     method=Code.FETCH, payload=body))
        except (TimeoutError, ConnectionResetError, DecodeError, BodyTooLarge):
            manager.endpoint.counters.malformed += 1

    def notified(peer: Peer, msg: Message) -> None:
        if msg.code >> 5 != 2:
            return
        if msg.first(Opt.BLOCK2) is not None:
            task = asyncio.get_running_loop().create_task(join(peer, msg))
            joining.add(task)
            task.add_done_callback(joining.discard)
            return
        deliver(msg)

    resp = manager.check(await manager.send(endpoint, Code.FETCH, (), payload=body,
                                            content_format=fmt, accept=fmt, observe=0,
                                            notify=notified, timeout=timeout),
                         "observe-composite")
    deliver(resp)
    return resp.token
