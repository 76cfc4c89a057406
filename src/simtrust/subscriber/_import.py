"""Bulk import of SIM-vendor output files (the "out" files personalisation centres deliver).

A file is CSV (comma, semicolon or tab, detected from the header line; UTF-8,
optional BOM; lines starting with ``#`` are comments). Header names are
case-insensitive and ignore spaces, ``_`` and ``-``. Accepted columns:

==================  =========================================================
``ICCID``           required; ITU-T E.118 with Luhn check digit
``IMSI``            required; TS 23.003 §2.2
``KI`` or ``K``     required; 128-bit hex (MILENAGE) or 128/256-bit (TUAK)
``OPC`` / ``OP``    MILENAGE: exactly one of the two per row, 128-bit hex
``TOPC`` / ``TOP``  TUAK: exactly one of the two per row, 256-bit hex
``AMF``             optional, 16-bit hex (default ``8000``)
``SQN``             optional, initial 48-bit SQN in hex (default 0)
``MNCLEN``          optional, 2 or 3 (``MNC_LENGTH`` also accepted)
``ALGORITHM``       optional, ``milenage`` or ``tuak`` (else implied by the OP column)
``KECCAKITERATIONS``, ``MACBITS``, ``RESBITS``, ``CKBITS``, ``IKBITS``: TUAK sizes
``STATE``           optional initial life-cycle state (default ``inventory``)
``APN``, ``STATICIP``, ``GROUP`` (device group name): optional attach settings
``AUTHMETHOD``      optional 5G method, ``5G_AKA`` (default) or ``EAP_AKA_PRIME``
==================  =========================================================

Other columns (PIN1, PUK1, ADM1, KIC, KID, ...) are ignored and reported; they
are never stored. The import is all-or-nothing: it runs in one transaction and
writes nothing if any row is bad, and then reports every bad row by line number
(the header is line 1).
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from simtrust.domain import Iccid, Imsi
from simtrust.errors import InvalidInput, NotFound
from simtrust.subscriber._errors import ImportRejected, RowError
from simtrust.subscriber._inventory import Inventory, secret_aad
from simtrust.subscriber._model import Algorithm, AuthMethod, OpKind, SimState, TuakParams
from simtrust.subscriber._sqn import initial_sqn_state

__all__ = ["HEADER_ALIASES", "ImportSummary", "SimImporter", "count_rows"]

#: Normalised header name → canonical column.
HEADER_ALIASES: dict[str, str] = {
    "iccid": "iccid",
    "imsi": "imsi",
    "ki": "k",
    "k": "k",
    "opc": "opc",
    "op": "op",
    "topc": "topc",
    "top": "top",
    "amf": "amf",
    "sqn": "sqn",
    "mnclen": "mnc_length",
    "mnclength": "mnc_length",
    "algorithm": "algorithm",
    "algo": "algorithm",
    "keccakiterations": "keccak_iterations",
    "macbits": "mac_bits",
    "resbits": "res_bits",
    "ckbits": "ck_bits",
    "ikbits": "ik_bits",
    "state": "state",
    "apn": "apn",
    "staticip": "static_ip",
    "ip": "static_ip",
    "group": "group",
    "authmethod": "auth_method",
}

_BATCH = 2_000
_OP_COLUMNS = ("opc", "op", "topc", "top")
_HEX = frozenset("0123456789abcdefABCDEF")


def _normalise(name: str) -> str:
    return "".join(c for c in name.strip().lower() if c not in " _-")


@dataclass(slots=True)
class ImportSummary:
    """What an import did (returned on success)."""

    file: str
    tenant_id: str
    rows: int
    imported: int
    sha256: str
    seconds: float
    ignored_columns: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.imported / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "tenant_id": self.tenant_id,
            "rows": self.rows,
            "imported": self.imported,
            "sha256": self.sha256,
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "rows_per_s": round(self.rows_per_s, 1),
            "ignored_columns": self.ignored_columns,
        }


def count_rows(path: Path) -> int:
    """Data rows in a file (lines after the header), for a progress total."""
    lines = 0
    last = b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - 1)


class _HashingReader(io.RawIOBase):
    """A binary reader that feeds a SHA-256 as it goes (the audit names the file's digest)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


#: Position of the static address in a parsed row (the column order of ``sub_sims``).
_STATIC_IP = 14


class SimImporter:
    """Imports vendor files into an :class:`Inventory`, one transaction per file."""

    __slots__ = ("_inventory",)

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory

    def import_file(
        self,
        path: Path,
        tenant_id: str,
        *,
        actor: str,
        progress: Callable[[int], None] | None = None,
        own_allocation: bool = False,
    ) -> ImportSummary:
        """Import ``path`` for ``tenant_id``; ImportRejected (nothing written) on bad rows.

        ``own_allocation``: as :meth:`Inventory.add_sim` (a row outside the tenant's
        ranges is a bad row)."""
        try:
            raw = path.open("rb")
        except OSError as exc:
            raise NotFound(f"cannot read {path}: {exc.strerror}", file=str(path)) from exc
        with raw:
            hashing = _HashingReader(raw)
            # Undecodable bytes become U+FFFD and fail the row's own checks, so every
            # bad row is still reported by line instead of the file failing at once.
            text = io.TextIOWrapper(
                io.BufferedReader(hashing, 1 << 20), encoding="utf-8-sig", errors="replace",
                newline="",
            )
            return self.import_stream(
                text, tenant_id, actor=actor, name=path.name, progress=progress,
                digest=hashing.digest.hexdigest, own_allocation=own_allocation,
            )

    def import_stream(
        self,
        stream: IO[str],
        tenant_id: str,
        *,
        actor: str,
        name: str = "<stream>",
        progress: Callable[[int], None] | None = None,
        digest: Callable[[], str] | None = None,
        own_allocation: bool = False,
    ) -> ImportSummary:
        started = time.perf_counter()
        cpu_started = time.process_time()
        inv = self._inventory
        inv.require_tenant(tenant_id)
        lines = _data_lines(stream)
        try:
            _header_line, header_text = next(lines)
        except StopIteration:
            raise InvalidInput("the file is empty", field="file") from None
        dialect = _dialect(header_text)
        try:
            header = next(csv.reader([header_text.rstrip("\r\n")], dialect))
        except csv.Error as exc:
            raise InvalidInput(f"malformed header line: {exc}", field="header") from None
        columns, ignored = _columns(header)
        groups = {g.name: g.id for g in inv.list_groups(tenant_id)}
        apns = {a.name for a in inv.list_apns(tenant_id)}
        parser = _RowParser(columns, groups, apns, inv.now().isoformat(), tenant_id)
        ranges = inv.allocations.index()
        db = inv.db
        errors: list[RowError] = []
        imported = 0
        rows = 0
        batch: list[tuple[Any, ...]] = []
        seen_iccid: set[int] = set()
        seen_imsi: set[int] = set()
        seen_ip: set[str] = set()
        with db.transaction():
            check_store = db.query_one("SELECT 1 FROM sub_sims LIMIT 1") is not None
            for line, record in _records(lines, dialect):
                rows += 1
                if isinstance(record, str):
                    errors.append(RowError(line, "row", record))
                    continue
                parsed = parser.parse(line, record, errors)
                if parsed is not None:
                    refused = ranges.refusal(tenant_id, str(parsed[0]), str(parsed[1]),
                                             own=own_allocation)
                    if refused is not None:
                        errors.append(RowError(line, "iccid" if "ICCID" in refused else "imsi",
                                               refused))
                        parsed = None
                if parsed is not None:
                    iccid_n, imsi_n = int(parsed[0]), int(parsed[1])
                    if iccid_n in seen_iccid:
                        errors.append(RowError(line, "iccid", "duplicate ICCID in this file"))
                        parsed = None
                    elif imsi_n in seen_imsi:
                        errors.append(RowError(line, "imsi", "duplicate IMSI in this file"))
                        parsed = None
                    seen_iccid.add(iccid_n)
                    seen_imsi.add(imsi_n)
                if parsed is not None and parsed[_STATIC_IP] is not None:
                    refused = ranges.address_refusal(tenant_id, parsed[_STATIC_IP],
                                                     own=own_allocation)
                    if refused is not None:
                        errors.append(RowError(line, "static_ip", refused))
                        parsed = None
                    elif parsed[_STATIC_IP] in seen_ip:
                        errors.append(RowError(line, "static_ip",
                                               "duplicate static address in this file"))
                        parsed = None
                    else:
                        seen_ip.add(parsed[_STATIC_IP])
                if parsed is not None:
                    # Rows after a bad one are still checked against the store (so
                    # every bad row is listed), just no longer sealed and written.
                    batch.append((line, parsed))
                    if len(batch) >= _BATCH:
                        imported += self._flush(batch, check_store, errors)
                        batch = []
                if progress is not None and rows % 1000 == 0:
                    progress(rows)
            if batch:
                imported += self._flush(batch, check_store, errors)
            if progress is not None:
                progress(rows)
            if errors:
                errors.sort(key=lambda e: e.line)
                raise ImportRejected(errors, rows=rows)
            if rows == 0:
                raise InvalidInput("the file has a header but no rows", field="file")
            file_digest = digest() if digest is not None else ""
            inv.changes.record("sim", "*")
            inv.audit.append(
                actor=actor,
                action="sim.import",
                subject=f"tenant:{tenant_id}",
                outcome="success",
                tenant_id=tenant_id,
                details={"file": name, "rows": rows, "sha256": file_digest,
                         "ignored_columns": ignored},
            )
        inv.notify("sim", "*")
        return ImportSummary(
            file=name, tenant_id=tenant_id, rows=rows, imported=imported,
            sha256=file_digest, seconds=time.perf_counter() - started, ignored_columns=ignored,
            cpu_seconds=time.process_time() - cpu_started,
        )

    def _flush(
        self, batch: list[tuple[int, tuple[Any, ...]]], check_store: bool,
        errors: list[RowError],
    ) -> int:
        inv = self._inventory
        if check_store:
            taken = _existing(inv, batch)
            if taken:
                for line, parsed in batch:
                    for col, value in (("iccid", parsed[0]), ("imsi", parsed[1])):
                        if (col, value) in taken:
                            errors.append(RowError(line, col, f"a SIM with this {col} exists"))
                    if ("static_ip", parsed[_STATIC_IP]) in taken:
                        errors.append(RowError(
                            line, "static_ip",
                            f"address {parsed[_STATIC_IP]} is assigned to another SIM"))
                return 0
        if errors:
            return 0  # the file is rejected: nothing to seal
        keyring = inv.keyring
        seal = keyring.seal
        rows = []
        for _line, parsed in batch:
            iccid = parsed[0]
            kind = parsed[7]
            rows.append((
                *parsed[:8],
                seal(parsed[8], secret_aad(iccid, "k")),
                seal(parsed[9], secret_aad(iccid, kind)),
                *parsed[10:],
            ))
        inv.insert_sealed_rows(rows)
        return len(rows)


def _existing(inv: Inventory, batch: list[tuple[int, tuple[Any, ...]]]) -> set[tuple[str, str]]:
    taken: set[tuple[str, str]] = set()
    for col, index in (("iccid", 0), ("imsi", 1)):
        values = [parsed[index] for _line, parsed in batch]
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for (value,) in inv.db.query(
                f"SELECT {col} FROM sub_sims WHERE {col} IN ({marks})", chunk
            ):
                taken.add((col, str(value)))
    addresses = [p[_STATIC_IP] for _line, p in batch if p[_STATIC_IP] is not None]
    for start in range(0, len(addresses), 500):
        chunk = addresses[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for sql in (f"SELECT static_ip FROM sub_sims WHERE static_ip IN ({marks})",
                    f"SELECT address FROM sub_leases WHERE address IN ({marks})"):
            taken.update(("static_ip", str(value)) for (value,) in inv.db.query(sql, chunk))
    return taken


def _data_lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for number, text in enumerate(stream, start=1):
        stripped = text.strip()
        if stripped and not stripped.startswith("#"):
            yield number, text


def _dialect(header: str) -> type[csv.Dialect]:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    sep = max(counts, key=lambda s: counts[s])

    class Vendor(csv.excel):
        delimiter = sep if counts[sep] else ","
        skipinitialspace = True

    return Vendor


def _records(
    lines: Iterator[tuple[int, str]], dialect: type[csv.Dialect]
) -> Iterator[tuple[int, list[str] | str]]:
    """(line number, fields) per physical line, or (line number, error text) if malformed.

    Vendor files do not quote across lines, so each physical line is one record;
    parsing line by line keeps a malformed line from ending the whole file.
    """
    reader_of = csv.reader
    for number, text in lines:
        try:
            yield number, next(reader_of([text.rstrip("\r\n")], dialect))
        except (csv.Error, StopIteration) as exc:
            yield number, f"malformed CSV line: {exc}"


def _columns(header: list[str]) -> tuple[dict[str, int], list[str]]:
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, name in enumerate(header):
        canonical = HEADER_ALIASES.get(_normalise(name))
        if canonical is None:
            if name.strip():
                ignored.append(name.strip())
            continue
        if canonical in columns:
            raise InvalidInput(f"column {name.strip()!r} appears twice", field="header")
        columns[canonical] = index
    missing = [c for c in ("iccid", "imsi", "k") if c not in columns]
    if missing:
        raise InvalidInput(
            f"header lacks required column(s) {', '.join(m.upper() for m in missing)}"
            " (ICCID, IMSI, KI are required)",
            field="header",
        )
    if not any(c in columns for c in _OP_COLUMNS):
        raise InvalidInput(
            "header needs an OPC or OP column (TOPC or TOP for TUAK)", field="header"
        )
    return columns, ignored


class _RowParser:
    """Validates one row into the column tuple of ``sub_sims`` (secrets not yet sealed)."""

    __slots__ = ("_apns", "_columns", "_default_sqn", "_groups", "_now", "_tenant")

    def __init__(
        self, columns: dict[str, int], groups: dict[str, int], apns: set[str], now: str,
        tenant_id: str,
    ) -> None:
        self._columns = columns
        self._groups = groups
        self._apns = apns
        self._now = now
        self._tenant = tenant_id
        self._default_sqn = initial_sqn_state()

    def parse(
        self, line: int, record: list[str], errors: list[RowError]
    ) -> tuple[Any, ...] | None:
        bad: list[RowError] = []
        width = len(record)
        cells = {
            name: record[index].strip() if index < width else ""
            for name, index in self._columns.items()
        }
        get = cells.get

        def cell(_record: list[str], name: str) -> str:
            return get(name, "")

        def fail(name: str, message: str) -> None:
            bad.append(RowError(line, name, message))

        iccid = imsi = None
        try:
            iccid = Iccid(cell(record, "iccid"))
        except InvalidInput as exc:
            fail("iccid", exc.detail)
        mnc_text = cell(record, "mnc_length")
        mnc_length = 0
        if mnc_text:
            if mnc_text in ("2", "3"):
                mnc_length = int(mnc_text)
            else:
                fail("mnc_length", "MNC length must be 2 or 3")
        try:
            imsi = Imsi(cell(record, "imsi"), mnc_length)
        except InvalidInput as exc:
            fail("imsi", exc.detail)
        present = [c for c in _OP_COLUMNS if cell(record, c)]
        kind: OpKind | None = None
        if len(present) != 1:
            fail("opc", "exactly one of OPC, OP, TOPC, TOP must be given"
                 + (f" (got {', '.join(p.upper() for p in present)})" if present else ""))
        else:
            kind = OpKind(present[0])
        algorithm_text = cell(record, "algorithm").lower()
        algorithm = kind.algorithm if kind is not None else Algorithm.MILENAGE
        if algorithm_text and algorithm_text != algorithm:
            fail("algorithm", f"algorithm {algorithm_text!r} does not match the "
                 f"{kind.upper() if kind else 'OP'} column")
        k = _hex(cell(record, "k"), (16, 32) if algorithm is Algorithm.TUAK else (16,))
        if k is None:
            fail("k", "K must be " + ("128 or 256" if algorithm is Algorithm.TUAK else "128")
                 + "-bit hex")
        op = None
        if kind is not None:
            op = _hex(cell(record, kind), (32,) if algorithm is Algorithm.TUAK else (16,))
            if op is None:
                fail(str(kind), f"{kind.upper()} must be "
                     + ("256" if algorithm is Algorithm.TUAK else "128") + "-bit hex")
        amf_text = cell(record, "amf") or "8000"
        amf = _hex(amf_text, (2,))
        if amf is None:
            fail("amf", "AMF must be 16-bit hex")
        sqn_text = cell(record, "sqn")
        sqn_state = self._default_sqn
        if sqn_text:
            sqn = _hex(sqn_text, (6,))
            if sqn is None:
                fail("sqn", "SQN must be 48-bit hex")
            else:
                sqn_state = initial_sqn_state(int.from_bytes(sqn, "big"))
        params = "{}"
        if algorithm is Algorithm.TUAK:
            try:
                values = {n: int(cell(record, n)) for n in
                          ("keccak_iterations", "mac_bits", "res_bits", "ck_bits", "ik_bits")
                          if cell(record, n)}
                params = json.dumps(TuakParams(**values).to_json())
            except ValueError:
                fail("tuak", "TUAK sizes must be integers")
            except InvalidInput as exc:
                fail(str(exc.context.get("field", "tuak")), exc.detail)
        state_text = cell(record, "state").lower() or "inventory"
        try:
            state = SimState(state_text)
        except ValueError:
            fail("state", f"unknown state {state_text!r}")
            state = SimState.INVENTORY
        group_name = cell(record, "group")
        group_id = None
        if group_name:
            group_id = self._groups.get(group_name)
            if group_id is None:
                fail("group", f"no device group {group_name!r}")
        static_ip = cell(record, "static_ip") or None
        if static_ip is not None:
            try:
                static_ip = str(ipaddress.ip_address(static_ip))
            except ValueError:
                fail("static_ip", "not an IP address")
        method_text = cell(record, "auth_method").upper() or "5G_AKA"
        try:
            method = AuthMethod(method_text)
        except ValueError:
            fail("auth_method", "auth method must be 5G_AKA or EAP_AKA_PRIME")
            method = AuthMethod.FIVEG_AKA
        apn = cell(record, "apn").lower() or None
        if apn is not None and apn not in self._apns:
            fail("apn", f"no APN {apn!r} for this tenant")
        if bad or iccid is None or imsi is None or kind is None:
            errors.extend(bad)
            return None
        return (
            iccid.value, imsi.value, imsi.mnc_length, self._tenant, str(state),
            str(algorithm), params, str(kind), k, op, amf.hex() if amf else "8000", sqn_state,
            group_id, apn, static_ip, None, None, self._now, self._now, str(method),
        )


def _hex(text: str, sizes: tuple[int, ...]) -> bytes | None:
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    if len(text) % 2 or not _HEX.issuperset(text):
        return None
    raw = bytes.fromhex(text)
    return raw if len(raw) in sizes else None
