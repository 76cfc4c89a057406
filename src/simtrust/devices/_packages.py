"""Firmware packages uploaded for FOTA (OMA LwM2M Core V1_1_1 §E.6, the Package resource
/5/0/0 pushed block-wise, RFC 7959), kept by content: ``<root>/<tenant>/<sha256 hex>``.

An upload is streamed to a temporary file in the tenant's folder while its SHA-256 is
computed; more than ``max_bytes`` ends it (413) and removes the file; an expected digest
the client names (``sha256``) must match (400). The finished file is fsynced, renamed to
its digest and the folder fsynced before the upload is acknowledged, so an acknowledged
package survives a crash; the same content uploaded twice is one file. Packages are per
tenant: another tenant's digest answers like one never uploaded.

A campaign pushes a package from its file (:meth:`FirmwarePackages.open`): the digest is
checked by reading the file in chunks, then each Block1 block is read by its offset when it
is sent (:class:`StoredPackage`, a ``BlockSource`` of ``devices/_blockwise.py``), so a
package costs constant memory whatever its size. A file replaced or changed after the
check (size, mtime or inode differ) fails the transfer instead of sending a mix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simtrust.errors import InvalidInput, NotFound, PayloadTooLarge

__all__ = ["FirmwarePackages", "PackageInfo", "PackageUpload", "StoredPackage",
           "parse_package_digest"]

_HEX = re.compile(r"[0-9a-f]{64}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def parse_package_digest(text: str) -> str:
    """``sha256:<64 hex>`` (or the bare hex) → the lower-case hex."""
    value = text.strip().lower().removeprefix("sha256:")
    if not _HEX.fullmatch(value):
        raise InvalidInput("a package digest is sha256:<64 hex digits>", field="digest")
    return value


@dataclass(frozen=True, slots=True)
class PackageInfo:
    digest: str
    size: int
    stored_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"digest": f"sha256:{self.digest}", "size": self.size,
                "stored_at": self.stored_at.isoformat()}


_CHUNK = 1 << 16


class StoredPackage:
    """A verified package read block by block from its file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        digest = hashlib.sha256()
        with path.open("rb") as f:
            stat = os.fstat(f.fileno())
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != path.name:
            raise NotFound("no such firmware package", reason="unknown-package")
        self._stamp = (stat.st_size, stat.st_mtime_ns, stat.st_ino)

    def __repr__(self) -> str:
        return f"StoredPackage({self._path.name[:12]}…, {self.size} bytes)"

    @property
    def size(self) -> int:
        return self._stamp[0]

    @property
    def digest(self) -> str:
        return self._path.name

    def read(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset`` (fewer at the end); NotFound if the file changed."""
        try:
            with self._path.open("rb") as f:
                stat = os.fstat(f.fileno())
                if (stat.st_size, stat.st_mtime_ns, stat.st_ino) != self._stamp:
                    raise NotFound("the firmware package changed during the transfer",
                                   reason="package-changed")
                return os.pread(f.fileno(), n, offset)
        except FileNotFoundError:
            raise NotFound("the firmware package was deleted during the transfer",
                           reason="package-changed") from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PackageUpload:
    """One upload in progress: :meth:`write` the chunks, then :meth:`commit` or
    :meth:`abort` (always one of them)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self._folder = folder
        self._max = max_bytes
        fd, name = tempfile.mkstemp(prefix=".upload-", dir=folder)
        self._file = os.fdopen(fd, "wb")
        self._path = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._max:
            self.abort()
            raise PayloadTooLarge(f"firmware packages are limited to {self._max} bytes",
                                  limit=self._max)
        self._hash.update(chunk)
        self._file.write(chunk)

    def commit(self, expected: str | None = None) -> PackageInfo:
        """Durable under its digest when this returns; ``expected`` (hex) must match."""
        digest = self._hash.hexdigest()
        if self.size == 0:
            self.abort()
            raise InvalidInput("an empty firmware package", field="body")
        if expected is not None and expected != digest:
            self.abort()
            raise InvalidInput(f"the package's SHA-256 is {digest}, not the one named",
                               field="sha256")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = self._folder / digest
        os.replace(self._path, final)
        _fsync_dir(self._folder)
        return PackageInfo(digest, self.size,
                           datetime.fromtimestamp(final.stat().st_mtime, UTC))

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()


class FirmwarePackages:
    """Uploaded firmware per tenant, addressed by SHA-256."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"FirmwarePackages({self.root}, max {self.max_bytes} bytes)"

    def _folder(self, tenant_id: str, *, create: bool = False) -> Path:
        if not _TENANT.fullmatch(tenant_id):
            raise InvalidInput("bad tenant id", field="tenant_id")
        folder = self.root / tenant_id
        if create:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder

    def begin(self, tenant_id: str) -> PackageUpload:
        return PackageUpload(self._folder(tenant_id, create=True), self.max_bytes)

    def _path(self, tenant_id: str, digest: str) -> Path:
        path = self._folder(tenant_id) / parse_package_digest(digest)
        if not path.is_file():
            raise NotFound("no such firmware package", reason="unknown-package")
        return path

    def info(self, tenant_id: str, digest: str) -> PackageInfo:
        path = self._path(tenant_id, digest)
        stat = path.stat()
        return PackageInfo(path.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def read(self, tenant_id: str, digest: str) -> bytes:
        """The package's bytes, checked against its digest (a changed file is refused)."""
        path = self._path(tenant_id, digest)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != path.name:
            raise NotFound("no such firmware package", reason="unknown-package")
        return data

    def open(self, tenant_id: str, digest: str) -> StoredPackage:
        """The package for block-wise transfer from its file, its digest checked."""
        return StoredPackage(self._path(tenant_id, digest))

    def packages(self, tenant_id: str) -> list[PackageInfo]:
        folder = self._folder(tenant_id)
        if not folder.is_dir():
            return []
        return [self.info(tenant_id, p.name) for p in sorted(folder.iterdir())
                if _HEX.fullmatch(p.name)]

    def delete(self, tenant_id: str, digest: str) -> None:
        self._path(tenant_id, digest).unlink()
