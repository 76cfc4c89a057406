"""simtrust.devices: LwM2M device management for the fleet (security-services layer).

A bootstrap server that devices reach with a key derived from their SIM (GBA Ks_NAF,
TS 33.220/33.222, or a per-device PSK) and that provisions their Security and Server
objects; a device-management server with registration tied to the SIM (ICCID/IMSI) and
IMEI, Read/Write/Execute/Observe on objects 3-7 in SenML-JSON, SenML-CBOR and TLV, and
queue mode; CoAP (RFC 7252) over DTLS 1.2 with PSK or X.509 device certificates from the
tenant CAs (RFC 6347, RFC 7925, python-mbedtls). See
docs/device-management.md.
"""

from simtrust.devices._bootstrap import (
    GBA_PSK_PREFIX,
    UA_PSK_TLS_CCM8,
    BootstrapServer,
    EnterpriseServer,
    NafKeySource,
)
from simtrust.devices._certauth import X509_PREFIX, DeviceCertificates
from simtrust.devices._client import FirmwareState, Lwm2mClient, new_endpoint_name
from simtrust.devices._coap import CON, Code, Message, MsgType, Opt, decode_message, encode_message
from simtrust.devices._composite import observe_composite, read_composite, write_composite
from simtrust.devices._content import (
    CF_LINK,
    CF_OPAQUE,
    CF_SENML_CBOR,
    CF_SENML_JSON,
    CF_TEXT,
    CF_TLV,
    check_links,
    decode_content,
    decode_paths,
    encode_content,
    encode_paths,
    parse_links,
)
from simtrust.devices._credentials import CredentialStore
from simtrust.devices._dtls_client import DtlsClientLink
from simtrust.devices._fota import RESULT_TEXT, Campaign, FirmwareCampaigns
from simtrust.devices._objects import OBJECTS, ObjLink, Path, Value, format_path, parse_path
from simtrust.devices._packages import (
    FirmwarePackages,
    PackageInfo,
    PackageUpload,
    StoredPackage,
    parse_package_digest,
)
from simtrust.devices._records import REPORTED_RESOURCES, ReportWriter, record_device_reports
from simtrust.devices._reports import check_bindings, feed_fraud_checks
from simtrust.devices._server import (
    DeviceAlert,
    DeviceManager,
    OperationFailed,
    Registration,
    SimFinder,
    parse_endpoint,
)
from simtrust.devices._service import DeviceServices, QueuedSink
from simtrust.devices._transport import (
    CertificateMode,
    CoapEndpoint,
    DtlsServerLink,
    Peer,
    PskEntry,
    UdpLink,
)

__all__ = [
    "CF_LINK",
    "CF_OPAQUE",
    "CF_SENML_CBOR",
    "CF_SENML_JSON",
    "CF_TEXT",
    "CF_TLV",
    "CON",
    "GBA_PSK_PREFIX",
    "OBJECTS",
    "REPORTED_RESOURCES",
    "RESULT_TEXT",
    "UA_PSK_TLS_CCM8",
    "X509_PREFIX",
    "BootstrapServer",
    "Campaign",
    "CertificateMode",
    "CoapEndpoint",
    "Code",
    "CredentialStore",
    "DeviceAlert",
    "DeviceCertificates",
    "DeviceManager",
    "DeviceServices",
    "DtlsClientLink",
    "DtlsServerLink",
    "EnterpriseServer",
    "FirmwareCampaigns",
    "FirmwarePackages",
    "FirmwareState",
    "Lwm2mClient",
    "Message",
    "MsgType",
    "NafKeySource",
    "ObjLink",
    "OperationFailed",
    "Opt",
    "PackageInfo",
    "PackageUpload",
    "Path",
    "Peer",
    "PskEntry",
    "QueuedSink",
    "Registration",
    "ReportWriter",
    "SimFinder",
    "StoredPackage",
    "UdpLink",
    "Value",
    "check_bindings",
    "check_links",
    "decode_content",
    "decode_message",
    "decode_paths",
    "encode_content",
    "encode_message",
    "encode_paths",
    "feed_fraud_checks",
    "format_path",
    "new_endpoint_name",
    "observe_composite",
    "parse_endpoint",
    "parse_links",
    "parse_package_digest",
    "parse_path",
    "read_composite",
    "record_device_reports",
    "write_composite",
]
