from typing import Any

def ipv4_flows(data: bytes, start: int, end: int, record_len: int, offsets: tuple[int, ...],
               base: float, exporter: str, names: dict[bytes, str], cls: type[tuple[Any, ...]],
               scale: int, out: list[Any]) -> int: ...
