"""LwM2M content formats: SenML-JSON (110) and SenML-CBOR (112) per RFC 8428 and Core
§7.4.4-7.4.5, the OMA TLV (11542) of Core §7.4.3, plain text (0), opaque (42) and the
CoRE link format (40, RFC 6690 §2) of registration payloads.

TLV and link format are written by hand (no maintained Python library covers OMA TLV);
CBOR goes through cbor2. Every decoder takes untrusted bytes and raises DecodeError.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import cbor2

from simtrust.devices._objects import ObjLink, Path, RType, Value, format_path, parse_path, resource
from simtrust.errors import DecodeError

__all__ = [
    "CF_CBOR",
    "CF_LINK",
    "CF_OPAQUE",
    "CF_SENML_CBOR",
    "CF_SENML_JSON",
    "CF_TEXT",
    "CF_TLV",
    "MAX_RECORDS",
    "check_links",
    "decode_content",
    "decode_paths",
    "encode_content",
    "encode_paths",
    "parse_links",
]

CF_TEXT = 0
CF_LINK = 40
CF_OPAQUE = 42
CF_CBOR = 60
CF_SENML_JSON = 110
CF_SENML_CBOR = 112
CF_TLV = 11542
#: Bound on the records/TLVs one payload may carry (a registration flood or a decoding
#: bomb must not grow memory without limit).
MAX_RECORDS = 512

# RFC 8428 §6 Table 4: CBOR labels of the SenML fields used by LwM2M.
_BN, _BT, _N, _V, _VS, _VB, _VD, _T = -2, -3, 0, 2, 3, 4, 8, 6
_VLO = "vlo"


# Type tuples built once: a ``bool | str`` union in an isinstance call is built on every call.
_NOT_NUMBER = (bool, str, bytes, ObjLink)
_NUMBER = (int, float)
_WHOLE = frozenset({RType.INTEGER, RType.UNSIGNED, RType.TIME})


def _typed(path: Path, value: Value) -> Value:
    """Coerce a decoded number to the resource's model type (ints stay ints)."""
    res = resource(path)
    if res is None or isinstance(value, _NOT_NUMBER):
        return value
    if res.rtype in _WHOLE and isinstance(value, float):
        if not value.is_integer():
            raise DecodeError(f"{format_path(path)} is an integer resource",
                              reason="lwm2m-type")
        return int(value)
    if res.rtype == RType.FLOAT:
        return float(value)
    return value


def _check_path(name: str) -> Path:
    try:
        return parse_path(name)
    except ValueError as exc:
        raise DecodeError("SenML name is not an LwM2M path", reason="senml-name") from exc


# -- SenML ----------------------------------------------------------------------------------


def _senml_records(values: Mapping[Path, Value], *, cbor: bool) -> list[dict[Any, Any]]:
    records: list[dict[Any, Any]] = []
    for path, value in values.items():
        rec: dict[Any, Any] = {(_N if cbor else "n"): format_path(path)}
        if isinstance(value, bool):
            rec[_VB if cbor else "vb"] = value
        elif isinstance(value, _NUMBER):
            rec[_V if cbor else "v"] = value
        elif isinstance(value, str):
            rec[_VS if cbor else "vs"] = value
        elif isinstance(value, bytes):
            rec[_VD if cbor else "vd"] = (
                value if cbor else base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii"))
        else:
            rec[_VLO] = str(value)
        records.append(rec)
    return records


def _objlnk(text: object) -> ObjLink:
    if not isinstance(text, str):
        raise DecodeError("vlo is a string", reason="senml-value")
    left, sep, right = text.partition(":")
    if not sep or not left.isdigit() or not right.isdigit() or max(len(left), len(right)) > 5:
        raise DecodeError("vlo is <object>:<instance>", reason="senml-value")
    ol = ObjLink(int(left), int(right))
    if ol.object_id > 65535 or ol.instance_id > 65535:
        raise DecodeError("vlo ids are 16-bit", reason="senml-value")
    return ol


def _senml_values(records: object, *, cbor: bool) -> dict[Path, Value]:
    if not isinstance(records, list):
        raise DecodeError("SenML pack is an array", reason="senml-format")
    if len(records) > MAX_RECORDS:
        raise DecodeError("too many SenML records", reason="senml-size")
    out: dict[Path, Value] = {}
    base = ""
    k_bn, k_n, k_v, k_vs, k_vb, k_vd = ((_BN, _N, _V, _VS, _VB, _VD) if cbor
                                        else ("bn", "n", "v", "vs", "vb", "vd"))
    for rec in records:
        if not isinstance(rec, dict):
            raise DecodeError("SenML record is a map", reason="senml-format")
        if k_bn in rec:
            if not isinstance(rec[k_bn], str):
                raise DecodeError("bn is a string", reason="senml-format")
            base = rec[k_bn]
        name = rec.get(k_n, "")
        if not isinstance(name, str):
            raise DecodeError("n is a string", reason="senml-format")
        path = _check_path(base + name)
        present = [k for k in (k_v, k_vs, k_vb, k_vd, _VLO) if k in rec]
        if len(present) > 1:
            raise DecodeError("a SenML record carries one value", reason="senml-value")
        if not present:
            continue  # a name without a value (read request in FETCH, §7.4.4)
        key = present[0]
        raw = rec[key]
        value: Value
        if key == k_v:
            if isinstance(raw, bool) or not isinstance(raw, _NUMBER) or (
                    isinstance(raw, float) and not math.isfinite(raw)):
                raise DecodeError("v is a finite number", reason="senml-value")
            value = raw
        elif key == k_vs:
            if not isinstance(raw, str):
                raise DecodeError("vs is a string", reason="senml-value")
            value = raw
        elif key == k_vb:
            if not isinstance(raw, bool):
                raise DecodeError("vb is a boolean", reason="senml-value")
            value = raw
        elif key == k_vd:
            value = _data(raw, cbor=cbor)
        else:
            value = _objlnk(raw)
        out[path] = _typed(path, value)
    return out


def _data(raw: object, *, cbor: bool) -> bytes:
    if cbor:
        if not isinstance(raw, bytes):
            raise DecodeError("vd is a byte string", reason="senml-value")
        return raw
    if not isinstance(raw, str):
        raise DecodeError("vd is base64url text", reason="senml-value")
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("vd is base64url text", reason="senml-value") from exc


# -- TLV ----------------------------------------------------------------------------------

_OBJ_INSTANCE, _RES_INSTANCE, _MULTI_RES, _RES_VALUE = 0, 1, 2, 3


def _tlv_header(kind: int, ident: int, length: int) -> bytes:
    head = kind << 6
    idb = ident.to_bytes(1, "big") if ident < 256 else ident.to_bytes(2, "big")
    if ident >= 256:
        head |= 0x20
    if length < 8:
        head |= length
        lb = b""
    elif length < 256:
        head |= 0x08
        lb = length.to_bytes(1, "big")
    elif length < 65536:
        head |= 0x10
        lb = length.to_bytes(2, "big")
    else:
        head |= 0x18
        lb = length.to_bytes(3, "big")
    return bytes([head]) + idb + lb


def _tlv_value(path: Path, value: Value) -> bytes:
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    if isinstance(value, int):
        for size in (1, 2, 4, 8):
            if -(1 << (8 * size - 1)) <= value < (1 << (8 * size - 1)):
                return value.to_bytes(size, "big", signed=True)
        raise ValueError(f"{format_path(path)}: integer out of 64-bit range")
    if isinstance(value, float):
        res = resource(path)
        if res is not None and res.rtype in (RType.INTEGER, RType.TIME) and value.is_integer():
            return _tlv_value(path, int(value))
        return struct.pack(">d", value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    return struct.pack(">HH", value.object_id, value.instance_id)


def _tlv_encode(values: Mapping[Path, Value], depth: int) -> bytes:
    """TLVs of the entries below a base of ``depth`` ids (0 object, 1 instance, 2 resource)."""
    groups: dict[int, dict[Path, Value]] = {}
    for path, value in values.items():
        groups.setdefault(path[depth], {})[path] = value
    out = bytearray()
    for ident, sub in groups.items():
        if depth == 0:
            body = _tlv_encode(sub, 1)
            out += _tlv_header(_OBJ_INSTANCE, ident, len(body)) + body
        elif depth == 1:
            out += _tlv_encode(sub, 2)
        elif depth == 2:
            if any(len(p) == 4 for p in sub):
                inner = b"".join(
                    _tlv_header(_RES_INSTANCE, p[3], len(v)) + v
                    for p, v in ((p, _tlv_value(p, val)) for p, val in sub.items()))
                out += _tlv_header(_MULTI_RES, ident, len(inner)) + inner
            else:
                ((p, val),) = sub.items()
                data = _tlv_value(p, val)
                out += _tlv_header(_RES_VALUE, ident, len(data)) + data
        else:
            ((p, val),) = sub.items()
            data = _tlv_value(p, val)
            out += _tlv_header(_RES_INSTANCE, ident, len(data)) + data
    return bytes(out)


def _tlv_items(data: bytes) -> list[tuple[int, int, bytes]]:
    items: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos < len(data):
        if len(items) >= MAX_RECORDS:
            raise DecodeError("too many TLVs", reason="tlv-size")
        head = data[pos]
        pos += 1
        kind = head >> 6
        id_len = 2 if head & 0x20 else 1
        len_type = (head >> 3) & 0x3
        if pos + id_len + len_type > len(data):
            raise DecodeError("truncated TLV header", reason="tlv-format")
        ident = int.from_bytes(data[pos:pos + id_len], "big")
        pos += id_len
        if len_type:
            length = int.from_bytes(data[pos:pos + len_type], "big")
            pos += len_type
        else:
            length = head & 0x07
        if pos + length > len(data):
            raise DecodeError("TLV value runs past the payload", reason="tlv-format")
        items.append((kind, ident, bytes(data[pos:pos + length])))
        pos += length
    return items


def _tlv_typed(path: Path, raw: bytes) -> Value:
    res = resource(path)
    rtype = RType.OPAQUE if res is None else res.rtype
    if rtype in (RType.INTEGER, RType.TIME, RType.UNSIGNED):
        if len(raw) not in (1, 2, 4, 8):
            raise DecodeError(f"{format_path(path)}: integer of {len(raw)} bytes",
                              reason="tlv-value")
        return int.from_bytes(raw, "big", signed=rtype != RType.UNSIGNED)
    if rtype == RType.FLOAT:
        if len(raw) == 4:
            return float(struct.unpack(">f", raw)[0])
        if len(raw) == 8:
            return float(struct.unpack(">d", raw)[0])
        raise DecodeError(f"{format_path(path)}: float of {len(raw)} bytes", reason="tlv-value")
    if rtype == RType.BOOLEAN:
        if raw not in (b"\x00", b"\x01"):
            raise DecodeError(f"{format_path(path)}: boolean is 0 or 1", reason="tlv-value")
        return raw == b"\x01"
    if rtype in (RType.STRING, RType.CORELNK):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{format_path(path)}: string is not UTF-8",
                              reason="tlv-value") from exc
    if rtype == RType.OBJLNK:
        if len(raw) != 4:
            raise DecodeError(f"{format_path(path)}: objlnk is four bytes", reason="tlv-value")
        a, b = struct.unpack(">HH", raw)
        return ObjLink(a, b)
    return raw


def _tlv_decode(data: bytes, base: Path) -> dict[Path, Value]:
    out: dict[Path, Value] = {}

    def walk(chunk: bytes, prefix: Path, level: int) -> None:
        for kind, ident, value in _tlv_items(chunk):
            if len(out) >= MAX_RECORDS:
                raise DecodeError("too many TLVs", reason="tlv-size")
            if kind == _OBJ_INSTANCE:
                if level != 1:
                    raise DecodeError("object instance TLV out of place", reason="tlv-format")
                walk(value, (*prefix, ident), 2)
            elif kind == _MULTI_RES:
                if level != 2:
                    raise DecodeError("multiple resource TLV out of place", reason="tlv-format")
                walk(value, (*prefix, ident), 3)
            elif kind == _RES_VALUE:
                if level != 2:
                    raise DecodeError("resource TLV out of place", reason="tlv-format")
                out[(*prefix, ident)] = _tlv_typed((*prefix, ident), value)
            else:
                if level != 3:
                    raise DecodeError("resource instance TLV out of place",
                                      reason="tlv-format")
                out[(*prefix, ident)] = _tlv_typed((*prefix, ident), value)

    level = len(base)
    if level == 0 or level > 3:
        raise DecodeError("TLV needs an object, instance or resource base", reason="tlv-format")
    if level == 3:
        items = _tlv_items(data)
        if len(items) == 1 and items[0][0] == _RES_VALUE and items[0][1] == base[2]:
            out[base] = _tlv_typed(base, items[0][2])
            return out
        if len(items) == 1 and items[0][0] == _MULTI_RES and items[0][1] == base[2]:
            walk(items[0][2], base, 3)
            return out
        walk(data, base, 3)
        return out
    walk(data, base, level)
    return out


# -- dispatch ------------------------------------------------------------------------------


def encode_content(fmt: int, values: Mapping[Path, Value], base: Path = ()) -> bytes:
    """Encode resource values in one content format; ``base`` is the request path (TLV
    nests below it; text and opaque take exactly one resource)."""
    if fmt == CF_SENML_JSON:
        return json.dumps(_senml_records(values, cbor=False), separators=(",", ":")).encode()
    if fmt == CF_SENML_CBOR:
        return cbor2.dumps(_senml_records(values, cbor=True))
    if fmt == CF_TLV:
        if len(base) == 3 and set(values) == {base}:
            data = _tlv_value(base, values[base])
            return _tlv_header(_RES_VALUE, base[2], len(data)) + data
        return _tlv_encode(values, len(base) if base else 0) if len(base) < 3 else (
            _tlv_encode(values, 2))
    if fmt in (CF_TEXT, CF_OPAQUE):
        if len(values) != 1:
            raise ValueError("plain text and opaque carry exactly one resource")
        (value,) = values.values()
        if fmt == CF_OPAQUE:
            if not isinstance(value, bytes):
                raise ValueError("opaque content is bytes")
            return value
        return (str(value).lower() if isinstance(value, bool) else str(value)).encode()
    raise ValueError(f"unsupported content format {fmt}")


def decode_content(fmt: int | None, payload: bytes, base: Path) -> dict[Path, Value]:
    """Decode a device's payload into ``{path: value}``; DecodeError for malformed input."""
    if fmt == CF_SENML_JSON:
        try:
            doc = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise DecodeError("SenML-JSON is not JSON", reason="senml-format") from exc
        return _senml_values(doc, cbor=False)
    if fmt == CF_SENML_CBOR:
        try:
            doc = cbor2.loads(payload)
        except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError,
                OverflowError, MemoryError) as exc:
            raise DecodeError("SenML-CBOR is not CBOR", reason="senml-format") from exc
        return _senml_values(doc, cbor=True)
    if fmt == CF_TLV:
        return _tlv_decode(payload, base)
    if fmt in (CF_TEXT, None) and len(base) >= 3:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("text/plain is not UTF-8", reason="text-format") from exc
        return {base: _text_value(base, text)}
    if fmt == CF_OPAQUE and len(base) >= 3:
        return {base: payload}
    raise DecodeError(f"unsupported content format {fmt}", reason="content-format")


def encode_paths(fmt: int, paths: Iterable[Path]) -> bytes:
    """The body of a Read-Composite or Observe-Composite (LwM2M Core V1_2, the
    Read-Composite and Observe-Composite operations; CoAP FETCH, RFC 8132): SenML records
    naming the paths, without values."""
    if fmt not in (CF_SENML_JSON, CF_SENML_CBOR):
        raise ValueError("composite operations use SenML-JSON or SenML-CBOR")
    cbor = fmt == CF_SENML_CBOR
    records = [{(_N if cbor else "n"): format_path(path)} for path in paths]
    return cbor2.dumps(records) if cbor else json.dumps(records, separators=(",", ":")).encode()


def decode_paths(fmt: int | None, payload: bytes) -> list[Path]:
    """The paths a Read-Composite names (records with a name and no value)."""
    if fmt not in (CF_SENML_JSON, CF_SENML_CBOR):
        raise DecodeError(f"unsupported content format {fmt}", reason="content-format")
    cbor = fmt == CF_SENML_CBOR
    try:
        doc = cbor2.loads(payload) if cbor else json.loads(payload.decode("utf-8"))
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError, OverflowError,
            MemoryError, UnicodeDecodeError) as exc:
        raise DecodeError("SenML paths are not SenML", reason="senml-format") from exc
    if not isinstance(doc, list) or not doc or len(doc) > MAX_RECORDS:
        raise DecodeError("SenML paths are a non-empty array", reason="senml-format")
    k_bn, k_n = (_BN, _N) if cbor else ("bn", "n")
    base, out = "", []
    for rec in doc:
        if not isinstance(rec, dict):
            raise DecodeError("SenML record is a map", reason="senml-format")
        if k_bn in rec:
            if not isinstance(rec[k_bn], str):
                raise DecodeError("bn is a string", reason="senml-format")
            base = rec[k_bn]
        name = rec.get(k_n, "")
        if not isinstance(name, str):
            raise DecodeError("n is a string", reason="senml-format")
        out.append(_check_path(base + name))
    return out


def _text_value(path: Path, text: str) -> Value:
    res = resource(path)
    rtype = RType.STRING if res is None else res.rtype
    try:
        if rtype in (RType.INTEGER, RType.UNSIGNED, RType.TIME):
            return int(text)
        if rtype == RType.FLOAT:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
    except ValueError as exc:
        raise DecodeError(f"{format_path(path)}: not a number", reason="text-format") from exc
    if rtype == RType.BOOLEAN:
        if text not in ("0", "1", "true", "false"):
            raise DecodeError(f"{format_path(path)}: not a boolean", reason="text-format")
        return text in ("1", "true")
    if rtype == RType.OBJLNK:
        return _objlnk(text)
    return text


# -- CoRE link format -------------------------------------------------------------------------


def parse_links(payload: bytes) -> list[tuple[str, dict[str, str]]]:
    """``</1/0>,</3/0>;ver=1.1`` → ``[("/1/0", {}), ("/3/0", {"ver": "1.1"})]``
    (RFC 6690 §2; quoted values may hold commas and semicolons)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("link format is UTF-8", reason="link-format") from exc
    links: list[tuple[str, dict[str, str]]] = []
    pos, end = 0, len(text)
    while pos < end:
        if len(links) >= MAX_RECORDS:
            raise DecodeError("too many links", reason="link-size")
        if text[pos] != "<":
            raise DecodeError("a link starts with <", reason="link-format")
        close = text.find(">", pos)
        if close < 0:
            raise DecodeError("unterminated link target", reason="link-format")
        target = text[pos + 1:close]
        pos = close + 1
        attrs: dict[str, str] = {}
        while pos < end and text[pos] == ";":
            pos += 1
            start = pos
            while pos < end and text[pos] not in "=;,":
                pos += 1
            key = text[start:pos]
            value = ""
            if pos < end and text[pos] == "=":
                pos += 1
                if pos < end and text[pos] == '"':
                    close = text.find('"', pos + 1)
                    if close < 0:
                        raise DecodeError("unterminated quoted value", reason="link-format")
                    value = text[pos + 1:close]
                    pos = close + 1
                else:
                    start = pos
                    while pos < end and text[pos] not in ";,":
                        pos += 1
                    value = text[start:pos]
            if not key:
                raise DecodeError("empty link attribute", reason="link-format")
            attrs[key] = value
        links.append((target, attrs))
        if pos < end:
            if text[pos] != ",":
                raise DecodeError("links are separated by commas", reason="link-format")
            pos += 1
    return links


# A link-format body (what Register and Update carry, ``</>;rt="oma.lwm2m";ct=110,</1/0>``)
# in the same grammar as parse_links accepts: a value is quoted (up to the next quote) or
# runs to the next ; or , and does not start with a quote.
_LINK_VALUE = r'(?:"[^"]*"|(?!")[^;,]*)'
_LINK = rf"<[^>]*>(?:;[^=;,]+(?:={_LINK_VALUE})?)*"
_LINKS = re.compile(f"(?:{_LINK})(?:,{_LINK})*")


def check_links(payload: bytes) -> str:
    """The text of a link-format body that :func:`parse_links` accepts, else DecodeError as
    it raises; checked by one regular expression instead of being parsed into records (the
    registration only keeps the text), the parser deciding what the expression does not
    match. Commas inside quoted values count towards the record bound here: such a body
    near the bound goes to the parser."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("link format is UTF-8", reason="link-format") from exc
    if text.count(",") < MAX_RECORDS and _LINKS.fullmatch(text):
        return text
    parse_links(payload)
    return text


def format_links(links: Iterable[tuple[str, Mapping[str, str]]]) -> bytes:
    parts = []
    for target, attrs in links:
        parts.append(f"<{target}>" + "".join(
            f";{k}" if v == "" else f";{k}={v}" for k, v in attrs.items()))
    return ",".join(parts).encode()
