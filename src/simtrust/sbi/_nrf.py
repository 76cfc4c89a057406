"""The UDM's NRF client: register, heartbeat, update, deregister (TS 29.510 §5.2.2).

NFRegister is ``PUT {nrf}/nnrf-nfm/v1/nf-instances/{nfInstanceId}`` with the
UDM's NFProfile (§6.1.6.2.2): ``udmInfo.supiRanges`` from the subscriber
store and one ``nudm-ueau`` NFService on the SBI endpoint. The NRF answers
with the profile it stored, whose ``heartBeatTimer`` the client then follows
(§5.2.2.3.2): a heartbeat is ``PATCH`` with the JSON Patch
``replace /nfStatus REGISTERED``; when the profile changed since the last
registration (SIMs of a new PLMN, another endpoint), the complete profile is
sent again with ``PUT`` (NFUpdate, §5.2.2.3.1). A heartbeat answered 404
means the NRF forgot us: register again. Any failure backs off
exponentially (``min_backoff_s``, 1 s, doubling to ``max_backoff_s``) and retries registration.
:meth:`NrfClient.stop` deregisters with ``DELETE``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["NrfClient", "udm_profile"]

_log = logging.getLogger("simtrust.sbi.nrf")


def udm_profile(
    instance_id: str, supi_ranges: list[dict[str, str]], host: str, port: int, scheme: str,
    *, heartbeat_s: int = 30,
) -> dict[str, Any]:
    """The UDM's NFProfile with its nudm-ueau service on ``scheme://host:port``."""
    profile: dict[str, Any] = {
        "nfInstanceId": instance_id,
        "nfType": "UDM",
        "nfStatus": "REGISTERED",
        "heartBeatTimer": heartbeat_s,
        "ipv4Addresses": [host],
        "nfServices": [{
            "serviceInstanceId": "nudm-ueau-1",
            "serviceName": "nudm-ueau",
            "versions": [{"apiVersionInUri": "v1", "apiFullVersion": "1.3.0"}],
            "scheme": scheme,
            "nfServiceStatus": "REGISTERED",
            "ipEndPoints": [{"ipv4Address": host, "transport": "TCP", "port": port}],
        }],
    }
    if supi_ranges:
        profile["udmInfo"] = {"supiRanges": supi_ranges}
    return profile


class NrfClient:
    """Keeps one NF instance registered at an NRF from a background thread."""

    def __init__(
        self, nrf_url: str, profile: Callable[[], dict[str, Any]], *,
        client: httpx.Client | None = None, min_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._base = nrf_url.rstrip("/") + "/nnrf-nfm/v1/nf-instances/"
        self._profile = profile
        self._client = client or httpx.Client(
            http2=True, http1=not nrf_url.startswith("http:"), timeout=10)
        self._min_backoff = min_backoff_s
        self._max_backoff = max_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent: dict[str, Any] | None = None
        self.heartbeat_s: float = 0.0
        self.registered = threading.Event()
        #: Operations completed (register, update, heartbeat, deregister) and failures.
        self.counts: dict[str, int] = {"register": 0, "update": 0, "heartbeat": 0,
                                       "deregister": 0, "failures": 0}

    def __repr__(self) -> str:
        return f"NrfClient({self._base!r}, registered={self.registered.is_set()})"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="nrf-client", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeats and deregister (best effort)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        if self.registered.is_set() and self._sent is not None:
            try:
                r = self._client.delete(self._base + self._sent["nfInstanceId"])
                if r.status_code in (200, 204, 404):
                    self.counts["deregister"] += 1
            except httpx.HTTPError as exc:
                _log.warning("NRF deregistration failed: %s", exc)
            self.registered.clear()
        self._client.close()

    # -- the loop ------------------------------------------------------------

    def _run(self) -> None:
        backoff = self._min_backoff
        while not self._stop.is_set():
            try:
                if not self.registered.is_set():
                    self._register()
                else:
                    self._beat()
                backoff = self._min_backoff
                wait = self.heartbeat_s
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self.counts["failures"] += 1
                self.registered.clear()
                _log.warning("NRF unreachable or refused (%s); retry in %.0f s", exc, backoff)
                wait = backoff
                backoff = min(backoff * 2, self._max_backoff)
            self._stop.wait(wait)

    def _register(self, *, update: bool = False) -> None:
        profile = self._profile()
        r = self._client.put(self._base + profile["nfInstanceId"], json=profile)
        if r.status_code not in (200, 201):
            raise ValueError(f"NFRegister answered {r.status_code}")
        stored = r.json()
        self.heartbeat_s = float(stored.get("heartBeatTimer") or profile["heartBeatTimer"])
        self._sent = profile
        self.counts["update" if update else "register"] += 1
        self.registered.set()

    def _beat(self) -> None:
        assert self._sent is not None
        profile = self._profile()
        if profile != self._sent:
            self._register(update=True)
            return
        r = self._client.patch(
            self._base + profile["nfInstanceId"],
            content=b'[{"op": "replace", "path": "/nfStatus", "value": "REGISTERED"}]',
            headers={"content-type": "application/json-patch+json"})
        if r.status_code == 404:
            self.registered.clear()
            return
        if r.status_code not in (200, 204):
            raise ValueError(f"heartbeat answered {r.status_code}")
        if r.status_code == 200 and r.content:
            self.heartbeat_s = float(r.json().get("heartBeatTimer") or self.heartbeat_s)
        self.counts["heartbeat"] += 1
