"""Untrusted inputs (vendor files, blocklist CSV, Nudm bodies) fail only with simtrust errors."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.errors import InvalidInput, SimtrustError
from simtrust.subscriber import SubscriberServices
from simtrust.subscriber._udm import _validate

from .conftest import K1, OPC1, TENANT, iccid, imsi

HEADER = "ICCID,IMSI,KI,OPC,AMF,SQN,STATE,MNCLEN\n"
GOOD = f"{iccid(1)},{imsi(1)},{K1.hex()},{OPC1.hex()},8000,000000000001,active,2\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_vendor_file_garbage_never_crashes_or_writes(lite: SubscriberServices, text: str) -> None:
    with pytest.raises(InvalidInput):
        lite.importer.import_stream(io.StringIO(HEADER + text + "\n" + "bad,row\n"), TENANT,
                                    actor="fuzz")
    assert 0 == sum(lite.inventory.count_sims(TENANT).values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_vendor_file_bytes(lite: SubscriberServices, tmp_path_factory: Any, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_bytes(HEADER.encode() + data)
    with contextlib.suppress(SimtrustError):
        lite.importer.import_file(path, TENANT, actor="fuzz")
    # Whatever the bytes, either the file imported whole or nothing was written.
    rows = sum(lite.inventory.count_sims(TENANT).values())
    events = lite.inventory.audit.query(action="sim.import")
    assert (rows == 0) == (not events) or rows == sum(e.details["rows"] for e in events)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([GOOD, "x,y\n", "\x00\n", '"unterminated\n', ";;;\n", "\n"]),
                max_size=6))
def test_vendor_file_row_mixes(lite: SubscriberServices, rows: list[str]) -> None:
    text = HEADER + "".join(rows)
    try:
        summary = lite.importer.import_stream(io.StringIO(text), TENANT, actor="fuzz")
    except SimtrustError:
        assert 0 == sum(lite.inventory.count_sims(TENANT).values())
    else:
        assert 1 == summary.imported
        lite.inventory.db.execute("DELETE FROM sub_sims")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_blocklist_csv_garbage(lite: SubscriberServices, text: str) -> None:
    try:
        lite.blocklist.import_csv("type,value,value_to,reason\n" + text, actor="fuzz")
    except SimtrustError:
        assert [] == lite.blocklist.entries()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["servingNetworkName", "ausfInstanceId",
                                        "resynchronizationInfo", "supportedFeatures", "x"]),
                       json_values, max_size=5))
def test_nudm_request_validation(body: dict[str, Any]) -> None:
    causes = []
    try:
        _validate(body)
    except InvalidInput as exc:
        causes.append(exc.context.get("cause"))
    assert all(causes)
    json.dumps(body)
