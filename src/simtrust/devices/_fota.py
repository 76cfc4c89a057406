"""Firmware-update campaigns over the fleet with the Firmware Update object (Core V1_1_1
§E.6): pull by Package URI (Write /5/0/1) or push (Write the package to /5/0/0, block-wise
per RFC 7959 through ``devices/_blockwise.py``, each block read by its offset from the
package's source, a stored package's file, so a large package costs constant memory);
per device wait for State 2 (Downloaded),
Execute /5/0/2, wait for State 0 with Update Result 1; staged by device group, a stage
whose failures pass the threshold halts the rollout and raises an alert. Also
configuration pushed to a group (Write to every registered device of it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simtrust.devices._blockwise import BlockSource, BytesSource
from simtrust.devices._content import CF_OPAQUE, CF_SENML_CBOR, CF_TEXT
from simtrust.devices._objects import Path, Value
from simtrust.devices._server import DeviceManager, OperationFailed
from simtrust.errors import InvalidInput, NotFound

__all__ = ["RESULT_TEXT", "Campaign", "FirmwareCampaigns"]

#: Update Result values (Core §E.6 resource 5).
RESULT_TEXT = {0: "initial", 1: "success", 2: "not enough flash", 3: "out of RAM",
               4: "connection lost", 5: "integrity check failure",
               6: "unsupported package type", 7: "invalid URI", 8: "update failed",
               9: "unsupported protocol"}
IDLE, DOWNLOADING, DOWNLOADED, UPDATING = 0, 1, 2, 3
#: Largest package pushed to /5/0/0 (Block1 NUM has 20 bits: 1 GiB at 1 KiB blocks).
MAX_PUSH = 64 << 20


@dataclass
class Campaign:
    """A rollout of one package to ordered stages (device groups or endpoint lists)."""

    campaign_id: str
    tenant_id: str
    package_uri: str
    version: str
    stages: list[list[str]]
    failure_threshold: float
    status: str = "created"
    results: dict[str, str] = field(default_factory=dict)
    halted_at_stage: int | None = None
    #: Push delivery: the package written to /5/0/0 (None: devices pull package_uri).
    package: BlockSource | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "tenant_id": self.tenant_id,
                "package_uri": self.package_uri, "version": self.version,
                "delivery": "pull" if self.package is None else "push",
                "package_size": None if self.package is None else self.package.size,
                "stages": self.stages, "failure_threshold": self.failure_threshold,
                "status": self.status, "results": dict(self.results),
                "halted_at_stage": self.halted_at_stage}


class FirmwareCampaigns:
    """Creates and runs campaigns against the management server's registrations."""

    def __init__(self, manager: DeviceManager, *, step_timeout: float = 600.0,
                 fmt: int = CF_SENML_CBOR) -> None:
        self._manager = manager
        self._timeout = step_timeout
        self._fmt = fmt
        self.campaigns: dict[str, Campaign] = {}

    def __repr__(self) -> str:
        return f"FirmwareCampaigns({len(self.campaigns)})"

    def group_endpoints(self, tenant_id: str, group_id: int) -> list[str]:
        return sorted(r.endpoint for r in self._manager.registrations(tenant_id)
                      if r.group_id == group_id)

    def create(self, tenant_id: str, package_uri: str, version: str, *,
               groups: Sequence[int] = (), stages: Sequence[Sequence[str]] = (),
               failure_threshold: float = 0.2,
               package: bytes | BlockSource | None = None) -> Campaign:
        """Stages from device groups (their devices registered now) or explicit endpoints.
        With ``package`` (bytes, or a source such as a stored package read by offset) the
        firmware is pushed to /5/0/0 and ``package_uri`` may be empty."""
        if isinstance(package, bytes):
            package = BytesSource(package)
        if package is not None:
            if not 0 < package.size <= MAX_PUSH:
                raise InvalidInput(f"a pushed package is 1 byte to {MAX_PUSH} bytes",
                                   field="package")
        elif not package_uri.startswith(("coap://", "coaps://", "http://", "https://")):
            raise InvalidInput("package URI is coap(s):// or http(s)://", field="package_uri")
        if len(package_uri) > 255:
            raise InvalidInput("package URI is at most 255 characters", field="package_uri")
        if not 0.0 <= failure_threshold <= 1.0:
            raise InvalidInput("failure threshold is a fraction 0..1", field="failure_threshold")
        plan = [list(s) for s in stages] or [self.group_endpoints(tenant_id, g) for g in groups]
        plan = [s for s in plan if s]
        if not plan:
            raise InvalidInput("the campaign has no registered devices", field="groups")
        for stage in plan:
            for endpoint in stage:
                if self._manager.get(endpoint).tenant_id != tenant_id:
                    raise NotFound("no registered device with that endpoint name",
                                   reason="not-registered")
        campaign = Campaign(os.urandom(6).hex(), tenant_id, package_uri, version, plan,
                            failure_threshold, package=package)
        self.campaigns[campaign.campaign_id] = campaign
        return campaign

    async def run(self, campaign_id: str) -> Campaign:
        campaign = self.campaigns[campaign_id]
        campaign.status = "running"
        for index, stage in enumerate(campaign.stages):
            outcomes = await asyncio.gather(*(self._update(campaign, ep) for ep in stage))
            failed = [ep for ep, ok in zip(stage, outcomes, strict=True) if not ok]
            if len(failed) / len(stage) > campaign.failure_threshold:
                campaign.status = "halted"
                campaign.halted_at_stage = index
                for later in campaign.stages[index + 1:]:
                    for ep in later:
                        campaign.results[ep] = "not started (rollout halted)"
                reg = self._manager.get(failed[0]) if failed[0] in {
                    r.endpoint for r in self._manager.registrations()} else None
                if reg is not None:
                    self._manager.alert(
                        "rollout-halted", reg,
                        f"firmware {campaign.version} halted at stage {index + 1}: "
                        f"{len(failed)} of {len(stage)} devices failed",
                        {"campaign_id": campaign.campaign_id, "failed": failed})
                return campaign
        campaign.status = "completed"
        return campaign

    async def _update(self, campaign: Campaign, endpoint: str) -> bool:
        states: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        current: dict[int, int] = {}

        def notified(values: dict[Path, Value]) -> None:
            for rid in (3, 5):
                value = values.get((5, 0, rid))
                if isinstance(value, int) and not isinstance(value, bool):
                    current[rid] = value
            states.put_nowait((current.get(3, IDLE), current.get(5, 0)))

        async def until(*wanted: int) -> tuple[int, int]:
            while True:
                state, result = await asyncio.wait_for(states.get(), self._timeout)
                if state in wanted and not (state == IDLE and result == 0):
                    return state, result
                if state == IDLE and result > 1:
                    return state, result

        token = b""
        try:
            token = await self._manager.observe(endpoint, (5, 0), notified, fmt=self._fmt,
                                                timeout=self._timeout)
            while not states.empty():
                states.get_nowait()
            if campaign.package is not None:
                await self._manager.write_blocks(endpoint, (5, 0, 0), campaign.package,
                                                 fmt=CF_OPAQUE, timeout=self._timeout)
            else:
                await self._manager.write(endpoint, (5, 0, 1),
                                          {(5, 0, 1): campaign.package_uri}, fmt=CF_TEXT,
                                          timeout=self._timeout)
            state, result = await until(DOWNLOADED)
            if state != DOWNLOADED:
                campaign.results[endpoint] = f"download failed: {RESULT_TEXT.get(result, result)}"
                return False
            await self._manager.execute(endpoint, (5, 0, 2), timeout=self._timeout)
            state, result = await until(IDLE)
            if result != 1:
                campaign.results[endpoint] = f"update failed: {RESULT_TEXT.get(result, result)}"
                return False
            version = (await self._manager.read(endpoint, (3, 0, 3), fmt=self._fmt,
                                                timeout=self._timeout)).get((3, 0, 3))
            if version != campaign.version:
                campaign.results[endpoint] = f"reports version {version!r} after the update"
                return False
        except (OperationFailed, NotFound, TimeoutError) as exc:
            campaign.results[endpoint] = f"failed: {exc}"
            return False
        finally:
            if token:
                self._manager.cancel_observation(token)
        campaign.results[endpoint] = "updated"
        return True

    async def configure_group(self, tenant_id: str, group_id: int, path: Path,
                              values: Mapping[Path, Value], *,
                              replace: bool = False) -> dict[str, str]:
        """Write the same configuration to every registered device of a group."""
        out: dict[str, str] = {}

        async def one(endpoint: str) -> None:
            try:
                await self._manager.write(endpoint, path, values, fmt=self._fmt,
                                          replace=replace, timeout=self._timeout)
                out[endpoint] = "written"
            except (OperationFailed, TimeoutError) as exc:
                out[endpoint] = f"failed: {exc}"

        await asyncio.gather(*(one(ep) for ep in self.group_endpoints(tenant_id, group_id)))
        return out
