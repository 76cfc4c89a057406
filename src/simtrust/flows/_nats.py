"""Partitioned flow-record ingestion over NATS JetStream (DESIGN.md "Runtime").

Producers (the UDP collector) map each flow to its SIM, pick a partition by a
stable hash of the IMSI (of the source address for unmapped flows) so every flow
of one device lands in one partition, and publish batches
(:mod:`simtrust.flows._nats_codec`) to ``<prefix>.<partition>`` of one stream.
Consumers run one durable pull consumer per partition with explicit
acknowledgement (JetStream ADR-31; nats-server docs "Consumers", AckExplicit,
AckWait, MaxDeliver) and acknowledge a message only after
:class:`~simtrust.flows.BatchApplier` committed it; malformed
messages are counted and terminated (``+TERM``), never redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from simtrust.domain import FlowRecord, ImsiDigits
from simtrust.errors import InvalidInput, SimtrustError
from simtrust.flows._nats_apply import BatchApplier
from simtrust.flows._nats_codec import (
    MAX_BATCH_RECORDS,
    BatchDecodeError,
    MappedFlow,
    decode_batch,
    encode_batch,
)
from simtrust.policy import AddressResolver

_K = TypeVar("_K", bound=str)

__all__ = [
    "DEFAULT_FLOW_STREAM",
    "DEFAULT_FLOW_SUBJECT",
    "ConsumerStats",
    "FlowConsumer",
    "FlowPublisher",
    "FlowStreamSettings",
    "NatsUnavailable",
    "ensure_flow_stream",
    "flow_partition",
    "parse_partitions",
    "setup_flow_stream",
]

log = logging.getLogger(__name__)

DEFAULT_FLOW_STREAM = "SIMTRUST_FLOWS"
DEFAULT_FLOW_SUBJECT = "simtrust.flows"


class NatsUnavailable(SimtrustError):
    """The NATS server could not be reached or JetStream refused a request."""

    code = "nats-unavailable"
    status = 503
    title = "NATS unavailable"


async def _log_nats_error(exc: Exception) -> None:
    log.warning("NATS: %r", exc)


async def _connect(url: str, *, persistent: bool) -> Any:
    """Connect, failing after three attempts; ``persistent`` then reconnects without end.

    nats-py's initial connect loops forever unless reconnect attempts are
    bounded, so the bound is lifted only once the first connection stands.
    """
    try:
        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=2,
                                reconnect_time_wait=0.5, error_cb=_log_nats_error)
    except (OSError, nats.errors.Error) as exc:
        raise NatsUnavailable(f"cannot reach NATS at {url}: {exc!r}", url=url) from exc
    if persistent:
        nc.options["max_reconnect_attempts"] = -1
    return nc


def flow_partition(key: str, partitions: int) -> int:
    """Stable partition of ``key`` (``imsi:<IMSI>`` or ``addr:<address>``) among ``partitions``.

    BLAKE2b-64 of the key modulo the count: the same on every host and Python
    version (the built-in ``hash`` of ``str`` is salted per process).
    """
    if partitions < 1:
        raise InvalidInput("partitions must be at least 1", field="partitions")
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def parse_partitions(text: str, of: int) -> list[int]:
    """``"0,1,4-6"`` → ``[0, 1, 4, 5, 6]``, each below ``of``."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
            out.update(range(first, last + 1))
    except ValueError as exc:
        raise InvalidInput(f"partitions {text!r}: expected e.g. 0,1,4-6",
                           field="partitions") from exc
    if not out or min(out) < 0 or max(out) >= of:
        raise InvalidInput(f"partitions {text!r} must lie in 0..{of - 1}", field="partitions")
    return sorted(out)


@dataclass(frozen=True, slots=True)
class FlowStreamSettings:
    """The stream: name, subject prefix, limits (max age, max bytes) and dedup window."""

    name: str = DEFAULT_FLOW_STREAM
    subject_prefix: str = DEFAULT_FLOW_SUBJECT
    max_age_s: float = 24 * 3600.0
    max_bytes: int = 1 << 30
    duplicate_window_s: float = 120.0
    file_storage: bool = True

    def subject(self, partition: int) -> str:
        return f"{self.subject_prefix}.{partition}"

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name, subjects=[f"{self.subject_prefix}.*"],
            retention=RetentionPolicy.LIMITS, max_age=self.max_age_s, max_bytes=self.max_bytes,
            duplicate_window=self.duplicate_window_s,
            storage=StorageType.FILE if self.file_storage else StorageType.MEMORY,
            description="simtrust flow-record batches, one subject per partition")


async def ensure_flow_stream(js: Any, settings: FlowStreamSettings) -> str:
    """Create the stream or bring its limits to ``settings``; ``created|updated|unchanged``."""
    wanted = settings.config()
    try:
        info = await js.stream_info(settings.name)
    except nats.js.errors.NotFoundError:
        await js.add_stream(wanted)
        return "created"
    have = info.config
    if (have.subjects == wanted.subjects and have.max_age == wanted.max_age
            and have.max_bytes == wanted.max_bytes
            and have.duplicate_window == wanted.duplicate_window):
        return "unchanged"
    # storage type cannot change on a live stream; keep what it has
    await js.update_stream(wanted.evolve(storage=have.storage))
    return "updated"


def setup_flow_stream(url: str, settings: FlowStreamSettings) -> str:
    """Blocking :func:`ensure_flow_stream` for the CLI."""

    async def go() -> str:
        nc = await _connect(url, persistent=False)
        try:
            return await ensure_flow_stream(nc.jetstream(), settings)
        except nats.js.errors.APIError as exc:
            raise NatsUnavailable(f"JetStream refused stream {settings.name}: {exc}",
                                  stream=settings.name) from exc
        finally:
            await nc.close()

    return asyncio.run(go())


# -- producer -------------------------------------------------------------------------


class FlowPublisher:
    """Maps flows to SIMs, partitions and batches them, publishes to JetStream.

    :meth:`publish` is called from the collector's thread (it is a
    :class:`~simtrust.flows.FlowCollector` sink); publishing runs on an asyncio
    loop of its own. A batch goes out when it holds ``batch_records`` flows or
    is ``linger`` seconds old; at most ``max_pending`` batches await their
    JetStream acknowledgement (back pressure on the caller beyond that). Every
    batch carries a ``Nats-Msg-Id`` so a retried publish is stored once; a batch
    not stored within ``retry_for`` seconds is counted in :attr:`errors`.
    """

    def __init__(self, url: str, *, partitions: int,
                 settings: FlowStreamSettings | None = None,
                 resolver: AddressResolver | None = None, batch_records: int = 512,
                 linger: float = 0.05, max_pending: int = 64, timeout: float = 5.0,
                 retry_for: float = 30.0) -> None:
        if not 1 <= batch_records <= MAX_BATCH_RECORDS:
            raise InvalidInput(f"batch_records must be 1..{MAX_BATCH_RECORDS}",
                               field="batch_records")
        if partitions < 1:
            raise InvalidInput("partitions must be at least 1", field="partitions")
        self.url = url
        self.partitions = partitions
        self.settings = settings or FlowStreamSettings()
        self.resolver = resolver
        self.batch_records = batch_records
        self.linger = linger
        self.timeout = timeout
        self.retry_for = retry_for
        self._producer = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._buffers: dict[int, list[MappedFlow]] = {}
        self._since: dict[int, float] = {}
        self._by_imsi: dict[ImsiDigits, int] = {}
        self._by_addr: dict[str, int] = {}
        self._slots = threading.BoundedSemaphore(max_pending)
        self._idle = threading.Condition()
        self._inflight = 0
        self._next_id = 0
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._nc: Any = None
        self._js: Any = None
        self._linger_task: asyncio.Task[None] | None = None
        self._closed = threading.Event()
        self.records = 0
        self.batches = 0
        self.unmapped = 0
        self.errors = 0

    def __repr__(self) -> str:
        return (f"FlowPublisher(stream={self.settings.name!r}, partitions={self.partitions}, "
                f"batches={self.batches})")

    def start(self) -> FlowPublisher:
        self._thread = threading.Thread(target=self._loop.run_forever, name="flow-publisher",
                                        daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._connect(), self._loop).result(self.timeout + 10)
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._thread = None
            raise
        return self

    async def _connect(self) -> None:
        self._nc = await _connect(self.url, persistent=True)
        self._js = self._nc.jetstream(timeout=self.timeout)
        self._linger_task = self._loop.create_task(self._linger_loop())

    def __enter__(self) -> FlowPublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def partition_of(self, flow: FlowRecord) -> tuple[int, MappedFlow]:
        """The partition of ``flow`` and the flow with its SIM mapping."""
        imsi, uplink = flow.imsi, True
        if imsi is None and self.resolver is not None:
            imsi = self.resolver.lookup(flow.src_addr)
            if imsi is None:
                imsi = self.resolver.lookup(flow.dst_addr)
                uplink = False
        if imsi is not None:
            part = self._partition(self._by_imsi, imsi, "imsi:")
        else:
            part = self._partition(self._by_addr, flow.src_addr, "addr:")
        if imsi != flow.imsi:
            flow = FlowRecord(flow.start, flow.end, flow.src_addr, flow.dst_addr, flow.src_port,
                              flow.dst_port, flow.protocol, flow.packets, flow.octets,
                              flow.tcp_flags, flow.exporter, imsi)
        return part, MappedFlow(flow, uplink)

    def _partition(self, cache: dict[_K, int], name: _K, prefix: str) -> int:
        part = cache.get(name)
        if part is None:
            if len(cache) > 1_000_000:
                cache.clear()
            part = cache[name] = flow_partition(prefix + name, self.partitions)
        return part

    def publish(self, flows: Iterable[FlowRecord]) -> None:
        """Queue ``flows``; full batches are sent at once (thread-safe)."""
        full: list[tuple[int, list[MappedFlow]]] = []
        now = time.monotonic()
        with self._lock:
            for flow in flows:
                part, mapped = self.partition_of(flow)
                if mapped.record.imsi is None:
                    self.unmapped += 1
                buf = self._buffers.get(part)
                if buf is None:
                    buf = self._buffers[part] = []
                    self._since[part] = now
                buf.append(mapped)
                if len(buf) >= self.batch_records:
                    full.append((part, buf))
                    del self._buffers[part]
        for part, buf in full:
            self._send(part, buf)

    __call__ = publish

    def _take_stale(self, older_than: float) -> list[tuple[int, list[MappedFlow]]]:
        now = time.monotonic()
        with self._lock:
            due = [p for p in self._buffers if now - self._since[p] >= older_than]
            return [(p, self._buffers.pop(p)) for p in due]

    async def _linger_loop(self) -> None:
        while not self._closed.is_set():
            await asyncio.sleep(self.linger)
            for part, buf in self._take_stale(self.linger):
                await self._loop.run_in_executor(None, self._send, part, buf)

    def _send(self, partition: int, flows: list[MappedFlow]) -> None:
        payload = encode_batch(flows, partition=partition, partitions=self.partitions)
        self._slots.acquire()
        with self._idle:
            self._inflight += 1
            self._next_id += 1
            msg_id = f"{self._producer}-{self._next_id}"
        asyncio.run_coroutine_threadsafe(
            self._publish(self.settings.subject(partition), payload, msg_id, len(flows)),
            self._loop)

    async def _publish(self, subject: str, payload: bytes, msg_id: str, count: int) -> None:
        # a server restart or leader change is retried with the same Nats-Msg-Id (stored once)
        # for up to retry_for seconds; the pending-batch bound holds the collector back meanwhile
        deadline = time.monotonic() + self.retry_for
        delay = 0.1
        try:
            while True:
                try:
                    await self._js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
                except nats.errors.Error as exc:
                    if time.monotonic() + delay > deadline:
                        self.errors += 1
                        log.warning("flow batch %s not stored: %r", msg_id, exc)
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                except Exception:  # nobody awaits this task: count and log instead of losing it
                    self.errors += 1
                    log.exception("flow batch %s not stored", msg_id)
                    return
                self.records += count
                self.batches += 1
                return
        finally:
            self._slots.release()
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def flush(self, timeout: float = 30.0) -> None:
        """Send every partial batch and wait for all acknowledgements."""
        for part, buf in self._take_stale(0.0):
            self._send(part, buf)
        with self._idle:
            if not self._idle.wait_for(lambda: self._inflight == 0, timeout):
                raise SimtrustError(f"{self._inflight} flow batches unacknowledged "
                                    f"after {timeout} s")

    async def _shutdown(self) -> None:
        if self._linger_task is not None:
            self._linger_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._linger_task
        await self._nc.close()

    def close(self) -> None:
        if self._thread is None or self._closed.is_set():
            return
        try:
            self.flush()
        finally:
            self._closed.set()
            with contextlib.suppress(Exception):  # best effort on shutdown
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


# -- consumer -------------------------------------------------------------------------


@dataclass(slots=True)
class ConsumerStats:
    """Counters of a consumer run."""

    batches: int = 0
    records: int = 0
    duplicates: int = 0
    failures: int = 0
    violations: int = 0
    alerts: int = 0
    ack_timeouts: int = 0
    malformed: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {"batches": self.batches, "records": self.records,
                "duplicates": self.duplicates, "failures": self.failures,
                "violations": self.violations, "alerts": self.alerts,
                "ack_timeouts": self.ack_timeouts, "malformed": dict(self.malformed)}


class FlowConsumer:
    """Durable pull consumers for some partitions of a flow stream, feeding one applier.

    Each partition ``p`` of ``of`` has the durable consumer
    ``<durable>-p<p>-of<of>`` filtered to ``<prefix>.<p>``; batches are applied
    in stream order and acknowledged (``+ACK``, waiting for the server's reply)
    after the applier committed them. A batch the applier fails on is
    ``+NAK``-ed with a delay and the rest of its fetch is handed back, so order
    within the partition mostly holds (the applier does not rely on it);
    malformed messages are ``+TERM``-ed. Every ``prune_every`` messages the
    applier forgets sequences below the consumer's ack floor.
    ``before_ack(partition, seq)`` is a test seam between commit and ack.
    """

    def __init__(self, applier: BatchApplier, *, url: str, of: int,
                 settings: FlowStreamSettings | None = None, durable: str = "simtrust-flows",
                 fetch_batch: int = 8, ack_wait: float = 30.0, max_deliver: int = 20,
                 fetch_timeout: float = 0.5, nak_delay: float = 1.0, prune_every: int = 256,
                 before_ack: Callable[[int, int], object] | None = None) -> None:
        if of < 1 or any(not 0 <= p < of for p in applier.partitions):
            raise InvalidInput(f"partitions {applier.partitions} must lie in 0..{of - 1}",
                               field="partitions")
        self.applier = applier
        self.url = url
        self.of = of
        self.settings = settings or FlowStreamSettings(name=applier.stream)
        self.durable = durable
        self.fetch_batch = fetch_batch
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.fetch_timeout = fetch_timeout
        self.nak_delay = nak_delay
        self.before_ack = before_ack
        self.prune_every = prune_every
        self.stats = ConsumerStats()
        self._last_activity = time.monotonic()

    def __repr__(self) -> str:
        return f"FlowConsumer(partitions={self.applier.partitions}, of={self.of})"

    def durable_name(self, partition: int) -> str:
        return f"{self.durable}-p{partition}-of{self.of}"

    async def run(self, *, stop: asyncio.Event | None = None, idle_exit: float | None = None,
                  duration: float | None = None) -> ConsumerStats:
        """Consume until ``stop`` is set, nothing arrived for ``idle_exit`` s, or ``duration``."""
        nc = await _connect(self.url, persistent=True)
        stop = stop or asyncio.Event()
        deadline = time.monotonic() + duration if duration else None
        self._last_activity = time.monotonic()
        try:
            js = nc.jetstream()
            subs = [await self._subscribe(js, p) for p in self.applier.partitions]
            tasks = [asyncio.create_task(self._partition_loop(p, sub, stop))
                     for p, sub in zip(self.applier.partitions, subs, strict=True)]
            try:
                while not stop.is_set():
                    done = [t for t in tasks if t.done()]
                    for t in done:
                        t.result()  # a crashed loop (the test seam) ends the run
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        break
                    if idle_exit is not None and now - self._last_activity >= idle_exit:
                        break
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.05)
            finally:
                stop.set()
                results = await asyncio.gather(*tasks, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                    raise r
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                await nc.close()
        return self.stats

    def run_blocking(self, **kwargs: Any) -> ConsumerStats:
        return asyncio.run(self.run(**kwargs))

    async def _subscribe(self, js: Any, partition: int) -> Any:
        config = ConsumerConfig(
            durable_name=self.durable_name(partition), ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait, max_deliver=self.max_deliver,
            max_ack_pending=max(self.fetch_batch * 4, 16),
            filter_subject=self.settings.subject(partition))
        try:
            return await js.pull_subscribe(self.settings.subject(partition),
                                           durable=self.durable_name(partition),
                                           stream=self.settings.name, config=config)
        except nats.js.errors.NotFoundError as exc:
            raise NatsUnavailable(f"stream {self.settings.name} does not exist "
                                  "(simtrust flows nats-setup creates it)",
                                  stream=self.settings.name) from exc
        except nats.js.errors.APIError as exc:
            raise NatsUnavailable(f"JetStream refused consumer {self.durable_name(partition)}:"
                                  f" {exc}", stream=self.settings.name) from exc

    async def _prune(self, partition: int, sub: Any) -> None:
        """Forget applied sequences below the consumer's ack floor (never redelivered)."""
        try:
            info = await sub.consumer_info()
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            log.warning("consumer info of partition %s: %r", partition, exc)
            return
        self.applier.forget_below(partition, info.ack_floor.stream_seq)

    async def _partition_loop(self, partition: int, sub: Any, stop: asyncio.Event) -> None:
        handled = 0
        while not stop.is_set():
            if handled >= self.prune_every:
                handled = 0
                await self._prune(partition, sub)
            try:
                msgs = await sub.fetch(self.fetch_batch, timeout=self.fetch_timeout)
            except (nats.errors.TimeoutError, TimeoutError):  # nats-py raises either
                continue
            except nats.errors.ConnectionClosedError:
                return
            if not msgs:
                continue
            self._last_activity = time.monotonic()
            for i, msg in enumerate(msgs):
                if not await self._handle(partition, msg):
                    for rest in msgs[i + 1:]:
                        await rest.nak()
                    break
                handled += 1
                self._last_activity = time.monotonic()

    async def _handle(self, partition: int, msg: Any) -> bool:
        """Apply one message; False when it was handed back for redelivery."""
        try:
            batch = decode_batch(msg.data)
            if batch.partition != partition or batch.partitions != self.of:
                raise BatchDecodeError(
                    "partition_mismatch",
                    f"batch for partition {batch.partition} of {batch.partitions} on the "
                    f"subject of partition {partition} of {self.of}")
        except BatchDecodeError as exc:
            self.stats.malformed[exc.reason] += 1
            log.warning("terminating malformed flow batch on %s: %s", msg.subject, exc.detail)
            await msg.term()
            return True
        seq = msg.metadata.sequence.stream
        try:
            result = self.applier.apply(partition, seq, batch)
        except Exception:  # store down, a sink's bug: retry later, never kill the consumer
            self.stats.failures += 1
            log.exception("flow batch %s of partition %s not applied", seq, partition)
            await msg.nak(delay=self.nak_delay)
            return False
        if result.applied:
            self.stats.batches += 1
            self.stats.records += result.records
            self.stats.violations += sum(1 for v in result.verdicts if v.decision.violations)
            self.stats.alerts += len(result.alerts)
        else:
            self.stats.duplicates += 1
        if self.before_ack is not None:
            outcome = self.before_ack(partition, seq)
            if isinstance(outcome, Awaitable):
                await outcome
        try:
            await msg.ack_sync()
        except (nats.errors.TimeoutError, TimeoutError):
            # The batch is committed; if the ack was lost the server redelivers it
            # after ack_wait and the applier counts it as a duplicate (by stream
            # sequence), so a slow server reply must not stop the partition.
            self.stats.ack_timeouts += 1
        return True
