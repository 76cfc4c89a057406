from typing import Any

def segmented(pos: Any, bucket: Any, inc: Any, keys: list[Any], counters: dict[Any, Any],
              prev: Any) -> list[Any] | bool | None: ...
