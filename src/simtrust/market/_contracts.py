"""Ledger contracts as provisioning functions: a slice SLA, a roaming agreement.

``SliceSla`` and ``RoamingAgreement`` service specifications (TMF633
``targetEntitySchema.@type``) create a two-party contract on the ledger in the
settlement formats (``docs/settlement.md``; TS 28.541 ServiceProfile targets
for the slice, issue 15 roaming agreement); see :mod:`._provision` for the
functions' life cycle. :func:`build_provisioners` assembles every function.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from simtrust.aaa import ApnAccessStore
from simtrust.bootstrap import CertificateAuthorities
from simtrust.errors import Conflict, InvalidInput, Rejected
from simtrust.identity import did_key
from simtrust.ledger import LedgerNode
from simtrust.market._provision import (
    _PARTY,
    _PLMN,
    NetworkPolicy,
    PrivateApn,
    Provisioners,
    SimBatch,
    TenantCa,
    _int,
    _Lifecycle,
    _text,
)
from simtrust.policy import PolicyStore
from simtrust.settlement import (
    CONTRACT_PAYLOAD_TYPE,
    ContractEngine,
    code_hash,
    create_payload,
    parse_agreement,
    parse_sla_contract,
    roaming_agreement_code,
    slice_sla_code,
    submit_contract,
    transition_payload,
)
from simtrust.subscriber import Inventory

__all__ = ["LedgerContract", "build_provisioners"]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Contract:
    name: str
    document: dict[str, Any]


class LedgerContract(_Lifecycle):
    """A two-party contract on the ledger: a slice SLA or a roaming agreement.

    The contract's document (the settlement formats of ``docs/settlement.md``) is
    kept as its exact JSON text in the contract state, with its SHA-256, so the
    decimals of the ServiceProfile survive (contract states hold no floats).
    """

    on_ledger = True

    def __init__(self, function: str, ledger: Callable[[], LedgerNode],
                 clock: Callable[[], datetime],
                 contracts: Callable[[], ContractEngine] | None = None) -> None:
        self._function = function
        self._ledger = ledger
        self._clock = clock
        self._contracts = contracts
        slice_sla = function == "SliceSla"
        self.modifiable = frozenset({"serviceProfile"}) if slice_sla else frozenset()
        # A roaming agreement ends only with both parties' signatures (issue 15).
        self.terminable = slice_sla

    def _contract(self, tenant_id: str, values: Mapping[str, Any]) -> _Contract:
        party = _text(values, "consumerParty")
        if not _PARTY.fullmatch(party):
            raise InvalidInput("consumerParty must be a did:key or did:simtrust identifier",
                               attribute="consumerParty")
        days = _int(values, "termDays", 365, 1, 3650)
        start = self._clock().replace(microsecond=0)
        end = start + timedelta(days=days)
        currency = _text(values, "currency", default="EUR")
        if self._function == "SliceSla":
            profile = values.get("serviceProfile")
            if not isinstance(profile, dict):
                raise InvalidInput("characteristic serviceProfile must be an object"
                                   " (TS 28.541 ServiceProfile)", attribute="serviceProfile")
            document: dict[str, Any] = {
                "id": f"sla-{tenant_id}-{_text(values, 'sliceName')}", "currency": currency,
                "start": _iso(start), "end": _iso(end),
                "fee_minor_units": _int(values, "feeMinorUnits", 0, 0, 10**12),
                "period_seconds": _int(values, "periodSeconds", 86_400, 60, 31 * 86_400),
                "service_profile": profile, "credits": values.get("credits", []),
                "consumer": party,
            }
            parse_sla_contract(json.dumps(document))
        else:
            home, visited = _text(values, "homePlmn"), _text(values, "visitedPlmn")
            if not (_PLMN.fullmatch(home) and _PLMN.fullmatch(visited)):
                raise InvalidInput("homePlmn and visitedPlmn are 5 or 6 digits",
                                   attribute="homePlmn")
            document = {
                "id": f"roaming-{home}-{visited}-{tenant_id}", "home_plmn": home,
                "visited_plmn": visited, "valid_from": _iso(start), "valid_until": _iso(end),
                "currency": currency,
                "tolerance_percent": _int(values, "tolerancePercent", 2, 0, 100),
                "tariffs": {"data_per_mb": _int(values, "dataPerMb", 0, 0, 10**9)},
                "home_party": party,
            }
            parse_agreement(json.dumps(document))
        return _Contract(str(document["id"]), document)

    def check(self, tenant_id: str, values: Mapping[str, Any], planned: Mapping[str, Any],
              ) -> None:
        self._contract(tenant_id, values)

    def provision(self, tenant_id: str, values: Mapping[str, Any], *, actor: str,
                  reason: str) -> dict[str, Any]:
        return self._issue(self._contract(tenant_id, values))

    def _issue(self, contract: _Contract) -> dict[str, Any]:
        ledger = self._ledger()
        text = json.dumps(contract.document, sort_keys=True, separators=(",", ":"))
        if self._function == "SliceSla":
            code = code_hash(slice_sla_code)
            parties = {"provider": did_key(ledger.signer.public_key),
                       "consumer": contract.document["consumer"]}
        else:
            code = code_hash(roaming_agreement_code)
            parties = {"visited": did_key(ledger.signer.public_key),
                       "home": contract.document["home_party"]}
        name = f"{contract.name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        state = {"document": text, "document_sha256": hashlib.sha256(text.encode()).hexdigest(),
                 "parties": parties, "signed": [], "status": "proposed"}
        result = ledger.issue(CONTRACT_PAYLOAD_TYPE, create_payload(name, code, state))
        if result.status not in ("accepted", "duplicate") or result.message_id is None:
            raise Rejected("ledger-refused", f"the ledger refused the contract: {result.reason}")
        return {"contractId": name, "ledgerMessageId": result.message_id.hex(),
                "codeHash": code, "document": contract.document}

    def compensate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                   reason: str) -> None:
        raise Conflict("a ledger contract cannot be undone", reason="on-ledger")

    def _amended(self, before: Mapping[str, Any], changes: Mapping[str, Any]) -> _Contract:
        profile = changes.get("serviceProfile")
        if not isinstance(profile, dict):
            raise InvalidInput("characteristic serviceProfile must be an object"
                               " (TS 28.541 ServiceProfile)", attribute="serviceProfile")
        document = {**before["document"], "service_profile": profile,
                    "start": _iso(self._clock().replace(microsecond=0))}
        parse_sla_contract(json.dumps(document))
        return _Contract(str(document["id"]), document)

    def check_modify(self, tenant_id: str, before: Mapping[str, Any],
                     changes: Mapping[str, Any]) -> None:
        self._amended(before, changes)

    def modify(self, tenant_id: str, before: Mapping[str, Any], changes: Mapping[str, Any],
               *, actor: str, reason: str) -> dict[str, Any]:
        """A new contract with the amended ServiceProfile; the old one is terminated."""
        after = self._issue(self._amended(before, changes))
        self.terminate(tenant_id, before, actor=actor, reason=reason)
        return {**after, "supersedes": before["contractId"]}

    def terminate(self, tenant_id: str, result: Mapping[str, Any], *, actor: str,
                  reason: str) -> None:
        """A ``terminate`` transition signed by the seller's ledger key (provider party)."""
        if self._contracts is None or not self.terminable:
            raise Rejected("not-terminable", "this contract cannot be terminated here")
        engine = self._contracts()
        name = str(result["contractId"])
        current = engine.state(name)
        if current["state"].get("status") == "terminated":
            return
        ledger = self._ledger()
        payload = transition_payload(name, current["state_hash"], {"action": "terminate"},
                                     [ledger.signer])
        outcome = submit_contract(ledger, engine, json.loads(payload))
        if outcome.get("status") == "rejected":
            raise Rejected("ledger-refused",
                           f"the ledger refused the termination: {outcome.get('reason')}")


def build_provisioners(
    *, inventory: Callable[[], Inventory], apn_access: Callable[[], ApnAccessStore],
    policies: Callable[[], PolicyStore], cas: Callable[[], CertificateAuthorities],
    ledger: Callable[[], LedgerNode], clock: Callable[[], datetime],
    contracts: Callable[[], ContractEngine] | None = None,
) -> Provisioners:
    """Every function, over the services the composition root hands in (built on first use)."""
    return {
        "SimBatch": SimBatch(inventory),
        "PrivateApn": PrivateApn(inventory, apn_access),
        "NetworkPolicy": NetworkPolicy(policies),
        "TenantCa": TenantCa(cas),
        "SliceSla": LedgerContract("SliceSla", ledger, clock, contracts),
        "RoamingAgreement": LedgerContract("RoamingAgreement", ledger, clock, contracts),
    }
