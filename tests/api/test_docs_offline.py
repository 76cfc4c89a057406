"""/docs and /redoc load every script and style from this server (no CDN)."""

from __future__ import annotations

import re
from typing import Any

import pytest


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_reference_pages_need_no_other_host(api: Any, page: str) -> None:
    response = api.get(page)
    assert 200 == response.status_code
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sources, response.text
    for source in sources:
        assert source.startswith("/"), f"{page} loads {source} from another host"
        asset = api.get(source)
        assert 200 == asset.status_code, source
        assert len(asset.content) > 0
    assert "fonts.googleapis" not in response.text
