"""The 5G service-based interface of the UDM over HTTP/2 (TS 29.500, 29.501, 29.503).

Nudm_UEAuthentication (:func:`create_sbi_app`), OAuth2 access-token checks
(:class:`TokenVerifier`) and the HTTP/2 server (:class:`SbiServer`: h2c with
prior knowledge or TLS with ALPN ``h2``, mutual TLS when configured) and the
NRF client that registers the UDM (:class:`NrfClient`); :class:`ConnectionDealer`
hands accepted connections to worker processes.
``simtrust serve`` starts it when ``SIMTRUST_SBI_BIND`` is set.
"""

from simtrust.handoff import ConnectionDealer
from simtrust.sbi._app import create_sbi_app, problem
from simtrust.sbi._nrf import NrfClient, udm_profile
from simtrust.sbi._server import SbiServer
from simtrust.sbi._tokens import TokenVerifier

__all__ = ["ConnectionDealer", "NrfClient", "SbiServer", "TokenVerifier", "create_sbi_app",
           "problem", "udm_profile"]
