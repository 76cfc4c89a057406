from collections.abc import Mapping
from typing import Any

from typing_extensions import Buffer

def step(devs: list[Any], starts: Buffer, ends: Buffer, dsts: list[str], dports: Buffer,
         packets: Buffer, octets: Buffer, protos: Buffer, flags: Buffer,
         classes: list[int], i: int, no_prev: Mapping[str, list[float]],
         beacon: tuple[float, float, float, float, float], knowledge: Any) -> int: ...
