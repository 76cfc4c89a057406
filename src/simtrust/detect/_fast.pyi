from collections.abc import Mapping
from typing import Any

def step(devs: list[Any], starts: list[float], ends: list[float], dsts: list[str],
         dports: list[int],
         packets: list[int], octets: list[int], protos: list[int], flags: list[int],
         classes: list[int], i: int, no_prev: Mapping[str, list[float]],
         beacon: tuple[float, float, float, float, float], knowledge: Any) -> int: ...
