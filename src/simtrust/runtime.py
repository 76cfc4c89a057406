"""The composition root: one :class:`Runtime` builds every service with its collaborators.

The API server, the CLI, the demo and the tests each open a Runtime and reach
the services through its typed attributes (:attr:`Runtime.subscriber`,
:attr:`~Runtime.policy`, :attr:`~Runtime.detect`, :attr:`~Runtime.flows`,
:attr:`~Runtime.ledger`, :attr:`~Runtime.identity`). Each is built on first
use, once, by the methods below, which pass every collaborator explicitly (the
store, keyring, audit log, clock, settings, other services, alert sinks); no
service looks another up, and no module below the interfaces layer imports
this one. Schema migrations of every package
(``simtrust.<pkg>._schema.MIGRATIONS``) are applied when the runtime opens,
and columns a package lists in ``SEALED_COLUMNS`` are re-wrapped by
:meth:`Runtime.rotate_master_key`.

One piece, although it is over 600 lines: it is the single composition root
(docs/architecture.md, "Runtime"), the one place that knows which
collaborators each service is built with. Every property is a few lines that
build one service from the others; spreading them over modules would scatter
exactly the wiring this module exists to keep readable in one place, and the
builders would again have to find each other by name.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from simtrust.aaa import AaaServices, EapAkaServer, EapIdentityStore, build_aaa
from simtrust.alerts import AlertDispatcher, AuditSink, MqttSink, WebhookSink
from simtrust.audit import AuditLog
from simtrust.bootstrap import BootstrapServices, build_bootstrap
from simtrust.config import Settings, load_settings
from simtrust.crypto import Keyring
from simtrust.detect import (
    LOCATION,
    Alert,
    DetectionService,
    EventFollower,
    FraudCases,
    SimEvent,
    SimEventLog,
    TacDatabaseFile,
    storm_guard_from,
)
from simtrust.devices import (
    DeviceAlert,
    DeviceCertificates,
    DeviceServices,
    FirmwarePackages,
    QueuedSink,
    check_bindings,
    feed_fraud_checks,
)
from simtrust.domain import Iccid, Imei, imsi_digits
from simtrust.errors import (
    ConfigError,
    Conflict,
    InvalidIdentifier,
    InvalidInput,
    NotFound,
    SimtrustError,
)
from simtrust.flows import FlowService
from simtrust.fraudshare import (
    Consortium,
    ConsortiumMembership,
    FraudIntelligence,
    ReportStatusList,
    consortium_from_json,
    platform_key_agreement,
)
from simtrust.identity import IdentityService
from simtrust.ledger import LedgerNode, open_ledger_node
from simtrust.market import (
    Federation,
    MarketEvents,
    MarketService,
    OperatorAdmission,
    Orchestrator,
    PartnerInbox,
    Provisioners,
    StatusListFetch,
    build_provisioners,
    credential_verifier,
)
from simtrust.policy import (
    PolicyService,
    PolicyStore,
    TunnelAlert,
    TunnelGateway,
    TunnelStore,
    TunnelSync,
    TunnelWatch,
    build_policy_service,
)
from simtrust.settlement import CONTRACT_CODES, ContractEngine
from simtrust.store import (
    Database,
    Migration,
    SealedColumn,
    TenantStore,
    apply_migrations,
    open_database,
)
from simtrust.streams import (
    ClientCertificate,
    EnergyMarket,
    IdentityDeviceCredentials,
    NodeClearingHouse,
    SimRef,
    StreamService,
    did_ed25519_keys,
)
from simtrust.subscriber import (
    AttachDecision,
    AttachEngine,
    DecisionRow,
    Sim,
    SimState,
    SubscriberServices,
    build_services,
)

__all__ = ["POLICY_ALERT_PREFIX", "SCHEMA_PACKAGES", "Runtime", "SealedColumn", "all_migrations",
           "settle_gc", "utc_now"]

#: MQTT topic prefix of policy alerts (attach and detection alerts use ``simtrust/alerts``).
POLICY_ALERT_PREFIX = "simtrust/policy/alerts"

#: Packages whose ``_schema`` module the runtime looks for, lowest layer first.
SCHEMA_PACKAGES = (
    "store",
    "audit",
    "ledger",
    "identity",
    "subscriber",
    "bootstrap",
    "policy",
    "detect",
    "aaa",
    "settlement",
    "streams",
    "market",
    "devices",
    "web",
)

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def settle_gc() -> None:
    """Keep the cyclic garbage collector from stalling a serving process.

    Called by the serving entry points (``simtrust node run``, ``simtrust
    serve``) once everything is started, never by the library: it changes
    process-wide settings. Request handling allocates a few hundred objects
    per request and frees them by reference counting (almost no cycles), yet
    CPython's default thresholds (700, 10, 10) then run a full collection
    every few thousand requests, and each walks the whole heap with every
    thread stopped: 0.3-1 s in a validator (docs/decisions/ledger-validator-gc.md),
    about 90 ms and some 40 us of CPU per S6a AIR in the HSS
    (docs/decisions/corenet-s6a-gc.md). The state loaded at start is frozen
    out of collection and the young generation is collected every 50,000 net
    allocations instead of 700; cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _schema_modules() -> Iterable[Any]:
    for package in SCHEMA_PACKAGES:
        name = f"simtrust.{package}._schema"
        if importlib.util.find_spec(f"simtrust.{package}") is None:
            continue
        if importlib.util.find_spec(name) is None:
            continue
        yield importlib.import_module(name)


def all_migrations() -> list[Migration]:
    found: list[Migration] = []
    for module in _schema_modules():
        found.extend(getattr(module, "MIGRATIONS", []))
    return found


def sealed_columns() -> list[SealedColumn]:
    found: list[SealedColumn] = []
    for module in _schema_modules():
        found.extend(getattr(module, "SEALED_COLUMNS", []))
    return found


class _QueuedAlerts:
    """An alert sink that hands detection alerts to a dispatcher thread."""

    name = "queued"

    def __init__(self, dispatcher: AlertDispatcher[Alert]) -> None:
        self._dispatcher = dispatcher

    def send(self, alert: Alert) -> None:
        self._dispatcher.submit(alert)

    def close(self) -> None:
        self._dispatcher.close()


class Runtime:
    """Everything one simtrust process shares: settings, store, keyring, audit, clock."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        keyring: Keyring,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.db = db
        self.keyring = keyring
        self.clock = clock
        apply_migrations(db, all_migrations())
        self.audit = AuditLog(db, clock)
        self.tenants = TenantStore(db)
        self._built: dict[str, Any] = {}
        self._suspended_attach: AttachEngine | None = None
        self._location_detect: DetectionService | None = None
        self._events_with_decisions = False
        self._order: list[Any] = []
        self._consortium_stamp = 0
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Runtime(home={str(self.settings.home)!r}, db={self.db!r})"

    @classmethod
    def open(cls, settings: Settings | None = None) -> Runtime:
        """Open the data directory ``settings`` names (it must have been initialised)."""
        settings = settings or load_settings()
        if not settings.master_key_file.is_file():
            raise ConfigError(
                f"no master key at {settings.master_key_file}; run `simtrust init` first"
            )
        keyring = Keyring.load(settings.master_key_file)
        return cls(settings, open_database(settings.store_url), keyring)

    @classmethod
    def initialise(cls, settings: Settings) -> Runtime:
        """Create the data directory and master key if missing, then open."""
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.home.chmod(0o700)
        if not settings.master_key_file.exists():
            Keyring.generate(settings.master_key_file)
        return cls.open(settings)

    @classmethod
    def ephemeral(
        cls,
        home: Path,
        store_url: str | None = None,
        schema: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> Runtime:
        """A runtime in a throwaway directory (tests, demo, benchmarks)."""
        settings = load_settings(env={}, home=home)
        if store_url is not None:
            settings = replace(settings, store_url=store_url)
        home.mkdir(parents=True, exist_ok=True)
        keyring = Keyring.generate(settings.master_key_file)
        return cls(settings, open_database(settings.store_url, schema=schema), keyring, clock)

    # -- the services, each built once with its collaborators --------------------------

    def _once(self, name: str, build: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._built:
                value = build()
                self._built[name] = value
                self._order.append(value)
            found: T = self._built[name]
            return found

    def _install(self, name: str, value: object) -> None:
        """Use ``value`` as the service ``name``; the runtime closes it with the others.

        Only before the runtime built its own: services built on one instance
        never silently switch to another.
        """
        with self._lock:
            current = self._built.get(name)
            if current is not None and current is not value:
                raise ConfigError(f"the runtime's {name} service is in use already")
            if current is None:
                self._built[name] = value
                self._order.append(value)

    @property
    def ledger(self) -> LedgerNode:
        """The operator's ledger node (sole validator over this store, key sealed at rest)."""
        return self._once("ledger", lambda: open_ledger_node(
            self.db, self.keyring, network=self.settings.network_id, clock=self.clock))

    @ledger.setter
    def ledger(self, node: LedgerNode) -> None:
        """Run on ``node`` (a consortium validator's ledger over this store)."""
        self._install("ledger", node)

    @property
    def identity(self) -> IdentityService:
        """DIDs, credentials and status lists, registered as the ledger's identity handler."""
        return self._once("identity", lambda: IdentityService(
            self.db, self.keyring, self.ledger, network=self.settings.network_id,
            clock=self.clock, public_url=self.settings.public_url))

    @property
    def subscriber(self) -> SubscriberServices:
        """Inventory, AuC, attach decisions; SIM-swap alerts to the tenant webhook and MQTT."""

        def build() -> SubscriberServices:
            services = build_services(self.db, self.keyring, self.audit, self.clock,
                                      sinks=[WebhookSink(), MqttSink(self.settings.mqtt_url)])
            services.attach.add_recorder(self._attach_events)
            services.attach.add_listener(self._attach_event)
            return services

        return self._once("subscriber", build)

    @subscriber.setter
    def subscriber(self, services: SubscriberServices) -> None:
        """Use ``services`` (built with other alert sinks, e.g. in tests)."""
        self._install("subscriber", services)

    @property
    def policy(self) -> PolicyService:
        """Policies and decisions over the subscriber inventory; ``remove`` suspends the SIM."""

        def build() -> PolicyService:
            subscriber = self.subscriber

            def tenant_webhooks(store: PolicyStore) -> list[WebhookSink]:
                return [WebhookSink(lookup=store.webhook)]

            return build_policy_service(
                self.db, self.audit, self.clock,
                sinks=[MqttSink(self.settings.mqtt_url, prefix=POLICY_ALERT_PREFIX)],
                sink_factory=tenant_webhooks,
                removers=[subscriber.suspender()],
                directory=subscriber.directory(),
                addresses=subscriber.addresses,
            )

        return self._once("policy", build)

    @policy.setter
    def policy(self, service: PolicyService) -> None:
        """Use ``service`` (built with other sinks or remove actions, e.g. in tests)."""
        self._install("policy", service)

    @property
    def market_events(self) -> MarketEvents:
        """TMF hub listeners and the event outbox with its delivery worker."""
        return self._once("market_events", lambda: MarketEvents(
            self.db, self.clock, base_url=self.settings.public_url or "http://localhost",
            allowed_networks=self.settings.callback_networks,
            signer_for=self.event_signer))

    def event_signer(self, hub_tenant: str | None) -> Any:
        """Deliveries to a partner operator's hub are signed by this operator's DID."""
        return self._issuer() if self.federation.buyer_of(hub_tenant) is not None else None

    @property
    def partner_inbox(self) -> PartnerInbox:
        """Events from partner sellers (signed, deduplicated) applied to this node's purchases."""
        return self._once("partner_inbox", lambda: PartnerInbox(self.db, self.clock))

    @property
    def provisioners(self) -> Provisioners:
        """What service orders act on: inventory, AAA, policies, CAs, the ledger."""
        return self._once("provisioners", lambda: build_provisioners(
            inventory=lambda: self.subscriber.inventory, apn_access=lambda: self.aaa.apns,
            policies=lambda: self.policy.store, cas=lambda: self.bootstrap.cas,
            ledger=lambda: self.ledger, clock=self.clock, contracts=lambda: self.contracts))

    @property
    def market(self) -> MarketService:
        """TMF620/TMF633 catalogs, TMF622 product orders, TMF641/TMF638/TMF637 reads."""
        return self._once("market", lambda: MarketService(
            self.db, self.audit, self.clock, provisioners=self.provisioners,
            events=self.market_events, anchor=self._anchor_order))

    def _issuer(self) -> Any:
        return self.identity.issuer()

    def _anchor_order(self, order: dict[str, Any], tenant_id: str | None) -> None:
        self.federation.anchor(order, tenant_id)

    @property
    def federation(self) -> Federation:
        """Catalog publication on the ledger, DID-signed partner requests, order anchors."""
        return self._once("federation", lambda: Federation(
            self.db, self.tenants, ledger=lambda: self.ledger,
            resolver=lambda: self.identity.resolver, signer=self._issuer,
            clock=self.clock,
            admission=OperatorAdmission(self.settings.operator_issuers,
                                        verify=self._verify_credential),
            credential=self._operator_credential()))

    def _verify_credential(self, token: object) -> Any:
        fetch = self._once("status_fetch", lambda: StatusListFetch(
            self.identity.status.published))
        return credential_verifier(self.identity, fetch, self.clock)(token)

    def _operator_credential(self) -> str | None:
        """This operator's OperatorCredential (a vc+jwt file named by the settings)."""
        path = self.settings.market_operator_credential
        if not path:
            return None
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"market_operator_credential: cannot read {path}",
                              setting="market_operator_credential") from exc

    @property
    def orchestrator(self) -> Orchestrator:
        """Turns acknowledged product orders into service orders and provisioned objects."""
        return self._once("orchestrator", lambda: Orchestrator(
            self.db, self.audit, self.clock, self.provisioners, self.market_events,
            anchor=self._anchor_order))

    @property
    def contracts(self) -> ContractEngine:
        """Contracts on the ledger (roaming agreements), replayed from the finalized order."""

        def build() -> ContractEngine:
            engine = ContractEngine(list(CONTRACT_CODES.values()))
            engine.attach(self.ledger)
            return engine

        return self._once("contracts", build)

    @property
    def firmware(self) -> FirmwarePackages:
        """Uploaded firmware packages per tenant, by SHA-256, in the data directory."""
        return self._once("firmware", lambda: FirmwarePackages(
            self.settings.home / "firmware", self.settings.firmware_max_bytes))

    @property
    def tunnels(self) -> TunnelStore:
        """Enterprise tunnels stored per APN (PSKs sealed with the keyring)."""
        return self._once("tunnels", lambda: TunnelStore(self.db, self.keyring, self.audit,
                                                         self.clock))

    def _tunnel_alerts(self) -> AlertDispatcher[TunnelAlert]:
        return self._once("tunnel_alerts", lambda: (
            AlertDispatcher([AuditSink(self.audit, actor="tunnels"),
                             MqttSink(self.settings.mqtt_url, prefix=POLICY_ALERT_PREFIX),
                             WebhookSink(lookup=self._tenant_webhook)])))

    def tunnel_sync(self, vici_path: str, directory: str, netns: str = "") -> TunnelSync:
        """The stored tunnels applied to the gateway's charon at ``vici_path`` (swanctl
        directory ``directory``, inside ``netns`` when named); a refused apply is a
        ``tunnel-apply-failed`` alert like ``tunnel-down``."""

        def build() -> TunnelSync:
            gateway = TunnelGateway(Path(directory), vici_uri=f"unix://{vici_path}",
                                    netns=netns or None)
            return TunnelSync(self.tunnels, gateway.apply,
                              on_alert=self._tunnel_alerts().submit, clock=self.clock)

        return self._once("tunnel_sync", build)

    def tunnel_watch(self, vici_path: str) -> TunnelWatch:
        """Tunnel events from the charon at ``vici_path``; a stored tunnel going down is a
        ``tunnel-down`` alert to the audit log, MQTT and the tenant's webhook (queued)."""

        def build() -> TunnelWatch:
            return TunnelWatch(vici_path, self.tunnels, on_alert=self._tunnel_alerts().submit,
                               clock=self.clock)

        return self._once("tunnel_watch", build)

    @property
    def detect(self) -> DetectionService:
        """Streaming detection; alerts to the audit log and the MQTT broker.

        Tenant webhooks get them too (the policy's alert targets, off the caller's
        thread). The fraud detectors ask the inventory whether a SIM in use is suspended.
        """

        def build() -> DetectionService:
            # tenant webhooks (the policy's alert targets) on a dispatcher thread: a slow
            # receiver never holds up a protocol listener
            hooks: AlertDispatcher[Alert] = AlertDispatcher(
                [WebhookSink(lookup=self._tenant_webhook)])
            service = DetectionService(
                [AuditSink(self.audit, actor="detect"), MqttSink(self.settings.mqtt_url),
                 _QueuedAlerts(hooks)])
            service.fraud.suspended = self._suspended
            service.fraud.tac_allocations = self.tac_database.current
            return service

        return self._once("detect", build)

    @property
    def tac_database(self) -> TacDatabaseFile:
        """The imported GSMA TAC database (``tac-database.json`` in the data directory)."""
        return self._once("tac_database",
                          lambda: TacDatabaseFile(self.settings.home / "tac-database.json"))

    def resolve_sim(self, sim: str, by_iccid: bool) -> tuple[str, str] | None:
        """(IMSI, tenant) of a SIM of the inventory named by IMSI or ICCID, or None."""
        if by_iccid:
            try:
                found = self.subscriber.inventory.get_sim(Iccid(sim))
            except (NotFound, InvalidIdentifier):
                return None
            return str(found.imsi), found.tenant_id
        view = self.subscriber.attach.sim_view(sim)
        return None if view is None else (view.imsi, view.tenant_id)

    @property
    def sim_events(self) -> SimEventLog:
        """The per-SIM event stream in the store that API workers hand to the serving process."""
        return self._once("sim_events", lambda: SimEventLog(self.db))

    def forward_sim_events(self) -> None:
        """This process (an API worker) hands its per-SIM events to the serving process;
        attach decisions' events are written in the transaction of their audit records."""
        self.detect.forward_to(self.sim_events)
        self._events_with_decisions = True

    def follow_sim_events(self) -> EventFollower:
        """This process (``simtrust serve``) detects over the events the workers forward;
        stopped by :meth:`close`."""
        return self._once("sim_event_follower", lambda: self.detect.follow(self.sim_events))

    def _tenant_webhook(self, tenant_id: str) -> str | None:
        return self.policy.store.webhook(tenant_id) if tenant_id else None

    def _suspended(self, imsi: str) -> bool:
        # asked for every session event: the attach engine is taken once (the
        # subscriber services, once built, are never replaced), not through the lock
        attach = self._suspended_attach
        if attach is None:
            attach = self._suspended_attach = self.subscriber.attach
        sim = attach.sim_view(imsi)
        return sim is not None and sim.state is SimState.SUSPENDED

    def _attach_events(self, rows: Sequence[DecisionRow]) -> None:
        """Forwarding (an API worker), recorded attach decisions' location events go to
        the shared SIM event stream inside the transaction that stores the decisions'
        audit records: one commit for both, not a second group commit per decision
        (docs/decisions/api-http-stack.md)."""
        if not self._events_with_decisions:
            return
        at = self.clock().timestamp()
        events = []
        for _at, tenant, _iccid, imsi, imei, plmn, *_rest in rows:
            try:
                events.append(SimEvent(at, imsi_digits(imsi), LOCATION, plmn=plmn, imei=imei,
                                       tenant=tenant or ""))
            except SimtrustError:
                continue
        if events:
            self.detect.observe_sims(events)

    def _attach_event(self, decision: AttachDecision) -> None:
        """Every attach decision (API, RADIUS, S6a ULR) as a location event of the SIM
        (``DetectionService.observe_location``: no event object for a SIM seen again
        where it was; the detection service, once built, is never replaced). An API
        worker's were written with the decisions (:meth:`_attach_events`)."""
        if self._events_with_decisions:
            return
        try:
            imsi = imsi_digits(decision.imsi)
        except SimtrustError:
            return
        detect = self._location_detect
        if detect is None:
            detect = self._location_detect = self.detect
        detect.observe_location(self.clock().timestamp(), imsi, decision.serving_plmn,
                                decision.imei, decision.tenant_id or "")

    @property
    def fraud_intel(self) -> FraudIntelligence:
        """Shared fraud intelligence of the consortium ``SIMTRUST_FRAUD_CONSORTIUM`` names.

        Signs as the platform issuer DID, matches partners' reports against this
        operator's SIMs, alerts through :attr:`detect`'s sinks and feeds the shared
        equipment blocklist to its fraud detector; rebuilt from the ledger. A change
        of the consortium file (members, keys, policy) applies from the next use.
        With a ``coordinator`` in the file, the coordinator's key rotations on the
        ledger bring members and keys (a changed coordinator needs a restart).
        """

        def build() -> FraudIntelligence:
            consortium, stamp = self._consortium()
            membership = None if consortium.coordinator is None else ConsortiumMembership(
                key=platform_key_agreement(self.identity), coordinator=consortium.coordinator,
                resolver=self.identity.resolver, grace=consortium.grace)
            intel = FraudIntelligence(
                me=self.identity.issuer().controller, members=consortium.members,
                keys=consortium.keys, resolver=self.identity.resolver,
                own_imsis=self._own_imsis,
                own_version=self.subscriber.inventory.count_sims,
                deliver=self.detect.deliver, policy=consortium.policy, now=self.clock,
                status=ReportStatusList(
                    self.identity.status,
                    self.identity.status_list_url(f"{self.identity.network}/fraud-reports/1"),
                    self.identity.issuer), membership=membership)
            self._consortium_stamp = stamp
            self.detect.fraud.shared_blocklist = intel.blocked_by
            self.ledger.register_handler("tagged-data", intel, replay_from=1)
            return intel

        intel = self._once("fraud_intel", build)
        try:
            changed = Path(self.settings.fraud_consortium).stat().st_mtime_ns \
                != self._consortium_stamp
        except OSError:
            changed = False  # gone for now: keep the consortium in use
        if changed:
            consortium, stamp = self._consortium()
            intel.update_consortium(consortium.members, consortium.keys, consortium.policy)
            self._consortium_stamp = stamp
        return intel

    def _consortium(self) -> tuple[Consortium, int]:
        """The consortium file's content and its modification stamp."""
        path = self.settings.fraud_consortium
        if not path:
            raise Conflict("fraud sharing is not configured (SIMTRUST_FRAUD_CONSORTIUM)")
        try:
            stamp = Path(path).stat().st_mtime_ns
            return consortium_from_json(json.loads(Path(path).read_text("utf-8"))), stamp
        except (OSError, ValueError, SimtrustError) as exc:
            detail = exc.detail if isinstance(exc, SimtrustError) else type(exc).__name__
            raise ConfigError(f"the consortium file {path} is unusable: {detail}",
                              setting="fraud_consortium") from None

    def _own_imsis(self) -> Iterable[str]:
        after = ""
        while True:
            page = self.subscriber.inventory.list_sims(after=after, limit=10_000)
            for sim in page:
                yield str(sim.imsi)
            if len(page) < 10_000:
                return
            after = str(page[-1].iccid)

    @property
    def fraud_cases(self) -> FraudCases:
        """Fraud alerts and analysts' verdicts, from the audit log."""
        return self._once("fraud_cases", lambda: FraudCases(self.audit))

    @property
    def fraud_status_file(self) -> Path:
        """Where the serving process leaves its fraud and storm counters for the API workers."""
        return self.settings.home / "fraud-status.json"

    def fraud_status(self, storm: dict[str, Any] | None = None) -> dict[str, Any]:
        """This process's fraud detector and sharing counters, with the listeners' ``storm``."""
        fraud = self.detect.fraud
        out: dict[str, Any] = {
            "detector": {"sims": len(fraud), "events": fraud.events, "alerts": fraud.alerts},
            "workers_stream": self._stream_status(),
            "sharing": self.fraud_intel.stats() if self.settings.fraud_consortium else None,
            "storm": storm or {},
            "at": self.clock().isoformat(),
        }
        return out

    def _stream_status(self) -> dict[str, int] | None:
        follower = self._built.get("sim_event_follower")
        if follower is None:
            return None
        return {"applied": follower.applied, "malformed": follower.malformed,
                "failures": follower.failures}

    def publish_fraud_status(self, storm: dict[str, Any] | None = None) -> None:
        """Write :meth:`fraud_status` atomically to :attr:`fraud_status_file`."""
        path = self.fraud_status_file
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.fraud_status(storm), sort_keys=True), "utf-8")
        os.replace(tmp, path)

    @property
    def flows(self) -> FlowService:
        """The flow pipeline driving policy and detection."""
        return self._once("flows", lambda: FlowService(
            self.db, self.policy, self.detect, nats_url=self.settings.nats_url,
            clock=self.clock))

    @property
    def bootstrap(self) -> BootstrapServices:
        """BSF, AAnF, CAs and the certificate server over the subscriber inventory."""

        def build() -> BootstrapServices:
            settings = self.settings
            public = None
            if settings.bootstrap_bind:
                port = settings.bootstrap_bind.rsplit(":", 1)[1]
                public = f"https://{settings.bootstrap_naf_fqdn}:{port}"
            return build_bootstrap(
                db=self.db, keyring=self.keyring, audit=self.audit, clock=self.clock,
                subscriber=self.subscriber, naf_fqdn=settings.bootstrap_naf_fqdn,
                bsf_domain=settings.bootstrap_bsf_domain, public_base_url=public,
            )

        return self._once("bootstrap", build)

    @property
    def devices(self) -> DeviceServices:
        """LwM2M bootstrap and device-management servers over the inventory and the BSF;
        device alerts to the audit log and the MQTT broker (through a queue)."""

        def build() -> DeviceServices:
            settings = self.settings
            dispatcher: AlertDispatcher[DeviceAlert] = AlertDispatcher(
                [AuditSink(self.audit, actor="devices"), MqttSink(settings.mqtt_url)])
            inventory = self.subscriber.inventory

            def sim_of(iccid: str) -> Sim | None:
                try:
                    return inventory.get_sim(Iccid(iccid))
                except (NotFound, InvalidIdentifier):
                    return None

            certificates = DeviceCertificates(self.bootstrap.cas, sim_of,
                                              [settings.lwm2m_public_host])
            services = DeviceServices(self.db, self.keyring, self.clock,
                                      sims=inventory, naf_keys=self.bootstrap.bsf,
                                      naf_fqdn=settings.lwm2m_public_host,
                                      sinks=[QueuedSink(dispatcher)],
                                      public_host=settings.lwm2m_public_host,
                                      certificates=certificates)
            # Reported IMEIs and positions go through the fraud detectors and the bindings.
            feed_fraud_checks(services.manager, self.detect.observe_sim, self.clock)

            def bound_imeis(iccid: str) -> list[str]:
                try:
                    return [b["imei"] for b in inventory.bindings(Iccid(iccid))]
                except (NotFound, InvalidIdentifier):
                    return []

            check_bindings(services.manager, bound_imeis)

            def write_reports(batch: Iterable[tuple[str, str, dict[str, Any], datetime]]) -> None:
                inventory.devices.record_reports(
                    [(tenant, Imei(imei), fields, at) for tenant, imei, fields, at in batch],
                    actor="devices")

            # Reported firmware and radio values go onto the inventory's device records.
            services.keep_records(write_reports)
            return services

        return self._once("devices", build)

    @devices.setter
    def devices(self, services: DeviceServices) -> None:
        """Use ``services`` (built with other alert sinks, e.g. in tests)."""
        self._install("devices", services)

    @property
    def aaa(self) -> AaaServices:
        """The AAA services (RADIUS server, accounting, dynamic authorization)."""

        def build() -> AaaServices:
            subscriber = self.subscriber
            return build_aaa(self.db, self.keyring, self.audit, self.clock,
                             subscriber.inventory, subscriber.attach, usage=self.policy.engine,
                             eap=EapAkaServer(subscriber.auth, self.audit,
                                              identities=EapIdentityStore(
                                                  self.db, self.keyring, self.clock),
                                              observer=self.detect.observe_sim),
                             storm=storm_guard_from(self.settings.storm_rates),
                             observer=self.detect.observe_sim,
                             observe_sessions=self.detect.observe_sessions)

        return self._once("aaa", build)

    @property
    def streams(self) -> StreamService:
        """Channels, provenance and meters; annotated live by attach decisions, SIM-swap and
        detection alerts and tier-2 certificate events (wired here, the one place that may)."""

        def build() -> StreamService:
            subscriber = self.subscriber

            def sims(iccid: str) -> SimRef | None:
                try:
                    sim = subscriber.inventory.get_sim(Iccid(iccid))
                except (NotFound, InvalidInput):
                    return None
                return SimRef(sim.imsi.value, sim.tenant_id)

            def bound_devices(iccid: str) -> list[str]:
                try:
                    return [b["imei"] for b in subscriber.inventory.bindings(Iccid(iccid))]
                except InvalidInput:
                    return []

            def tls_certificate(der: bytes) -> ClientCertificate | None:
                status = self.bootstrap.cas.status
                found = status.presented(der)
                if found is None:
                    return None
                issuer, ocsp = status.ocsp_of(der) or (b"", b"")
                return ClientCertificate(found.serial, found.tenant_id, found.iccid,
                                         found.status, found.not_before, found.not_after,
                                         issuer=issuer, ocsp=ocsp)

            service = StreamService(
                self.db, self.keyring, self.audit, self.clock,
                anchor=lambda: self.ledger.anchor,
                anchor_state=lambda message: str(self.ledger.status(message).get("state")),
                devices=lambda: IdentityDeviceCredentials(self.identity),
                sims=sims, bound_devices=bound_devices, tls_certificate=tls_certificate,
                address_of=subscriber.addresses.address_of,
            )
            subscriber.attach.add_listener(service.on_attach)
            subscriber.alerts.add_sink(service.alert_sink())
            self.detect.add_sink(service.alert_sink())
            self.bootstrap.cas.subscribe(service.on_certificate)
            return service

        return self._once("streams", build)

    def prove_reading(self, message_id: str) -> dict[str, Any]:
        """A stored meter reading proven from the ledger alone: its signature, its batch's
        anchored root, and its author key in the SIM's DID document (docs/streams.md)."""
        return self.streams.prove_on_ledger(
            message_id,
            anchor_at=self.ledger.anchor_covering,
            sim_keys=lambda did: did_ed25519_keys(self.identity.resolve(did).document))

    @property
    def energy(self) -> EnergyMarket:
        """The local energy market over the stored meters; the node key, as the market's
        clearing house, pays sellers in a settlement token (docs/streams.md)."""

        def build() -> EnergyMarket:
            return EnergyMarket(self.db, self.streams, self.audit, self.clock,
                                NodeClearingHouse(self.ledger))

        return self._once("energy", build)

    def sealed_count(self) -> int:
        """How many sealed values a master-key rotation re-wraps (its progress total)."""
        total = 0
        for column in sealed_columns():
            row = self.db.query_one(
                f"SELECT COUNT(*) FROM {column.table} WHERE {column.column} IS NOT NULL"
            )
            total += int(row[0]) if row else 0
        return total

    def rotate_master_key(self, progress: Callable[[int], None] | None = None) -> tuple[str, int]:
        """Add a master key, re-wrap every sealed column under it; (new id, blobs re-wrapped)."""
        new_kid = self.keyring.add_key()
        count = 0
        for column in sealed_columns():
            rows = self.db.query(
                f"SELECT {column.key_column}, {column.column} FROM {column.table}"
                f" WHERE {column.column} IS NOT NULL"
            )
            with self.db.transaction():
                for key, blob in rows:
                    self.db.execute(
                        f"UPDATE {column.table} SET {column.column} = ?"
                        f" WHERE {column.key_column} = ?",
                        (self.keyring.rewrap(bytes(blob)), key),
                    )
                    count += 1
                    if progress is not None:
                        progress(count)
        return new_kid, count

    def close(self) -> None:
        """Close the services (last built first), then the store."""
        with self._lock:
            built, self._order = self._order[::-1], []
            self._built.clear()
        for value in built:
            closer = getattr(value, "close", None)
            if callable(closer):
                closer()
        self.db.close()
