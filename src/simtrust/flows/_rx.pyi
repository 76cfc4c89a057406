from typing import Any

SLOT: int
MAX_BATCH: int

def recv_batch(fd: int, buffer: bytearray, max: int, timeout_ms: int,
               names: dict[bytes, str]) -> tuple[list[int], list[str]]: ...
def decode_datagrams(buffer: bytearray | bytes, lengths: list[int], senders: list[str],
                     first: int, now: float, state: tuple[Any, ...]
                     ) -> tuple[int, tuple[Any, ...] | None, int, int]: ...
def to_records(columns: tuple[Any, ...], senders: list[str], names: dict[bytes, str],
               cls: type[tuple[Any, ...]], out: list[Any]) -> int: ...
