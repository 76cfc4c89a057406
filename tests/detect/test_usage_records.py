"""Usage records of the mediation: JSON lines and CSV in, voice/SMS SIM events out.

Both forms give the same records; every malformed field is refused with the
line it is on; the counterpart number is read and never kept; ICCIDs and
IMSIs map through the resolver, SIMs it does not know are counted; the
decoders never fail on arbitrary text with anything but InvalidInput.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simtrust.detect import UsageRecord, parse_usage_records, usage_events, usage_record
from simtrust.errors import InvalidInput

IMSI = "001010000000042"
ICCID = "8988200000000000007"
NUMBER = "+4915112345678"

JSONL = "\n".join(json.dumps(d) for d in [
    {"imsi": IMSI, "kind": "voice", "direction": "mo", "start": "2026-12-01T10:00:00Z",
     "duration": 65, "counterpart": NUMBER},
    {"iccid": ICCID, "kind": "sms", "direction": "mt", "start": 1796119200},
]) + "\n"
CSV = ("imsi,iccid,kind,direction,start,duration,counterpart\r\n"
       f"{IMSI},,voice,MO,2026-12-01T11:00:00+01:00,65,{NUMBER}\r\n"
       f",{ICCID},sms,mt,1796119200,,\r\n")


def test_json_lines_and_csv_give_the_same_records() -> None:
    a = parse_usage_records(JSONL)
    b = parse_usage_records(CSV)
    assert a == b
    assert a[0] == UsageRecord(IMSI, False, "voice", "mo", 1796119200.0, 65.0)
    assert a[1] == UsageRecord(ICCID, True, "sms", "mt", 1796119200.0, 0.0)
    assert parse_usage_records(JSONL, "jsonl") == a
    assert parse_usage_records(CSV, "csv") == a


def test_the_counterpart_is_never_kept() -> None:
    records = parse_usage_records(JSONL)
    events, _ = usage_events(records, lambda sim, by_iccid: (IMSI, "acme"))
    assert NUMBER not in repr(records) + repr(events)
    assert all(NUMBER not in json.dumps(e.to_json()) for e in events)


def test_sims_map_through_the_resolver_and_unknown_ones_are_counted() -> None:
    asked: list[tuple[str, bool]] = []

    def resolve(sim: str, by_iccid: bool) -> tuple[str, str] | None:
        asked.append((sim, by_iccid))
        return ("001010000000099", "acme") if by_iccid else None

    records = parse_usage_records(JSONL) * 3
    events, unknown = usage_events(records, resolve)
    assert unknown == 3
    assert [(e.imsi, e.kind, e.direction, e.tenant) for e in events] == [
        ("001010000000099", "sms", "mt", "acme")] * 3
    assert sorted(asked) == [(IMSI, False), (ICCID, True)]  # once per SIM


@pytest.mark.parametrize(("line", "message"), [
    ({"kind": "voice", "direction": "mo", "start": 1}, "exactly one of 'imsi' and 'iccid'"),
    ({"imsi": IMSI, "iccid": ICCID, "kind": "voice", "direction": "mo", "start": 1},
     "exactly one"),
    ({"imsi": "12ab", "kind": "voice", "direction": "mo", "start": 1}, "IMSI"),
    ({"iccid": "1234", "kind": "sms", "direction": "mo", "start": 1}, "'iccid'"),
    ({"imsi": IMSI, "kind": "data", "direction": "mo", "start": 1}, "'kind'"),
    ({"imsi": IMSI, "kind": "sms", "direction": "in", "start": 1}, "'direction'"),
    ({"imsi": IMSI, "kind": "sms", "direction": "mo"}, "'start' is required"),
    ({"imsi": IMSI, "kind": "sms", "direction": "mo", "start": "2026-12-01T10:00:00"},
     "UTC offset"),
    ({"imsi": IMSI, "kind": "sms", "direction": "mo", "start": "yesterday"}, "RFC 3339"),
    ({"imsi": IMSI, "kind": "sms", "direction": "mo", "start": -5}, "out of range"),
    ({"imsi": IMSI, "kind": "sms", "direction": "mo", "start": 10**30}, "out of range"),
    ({"imsi": IMSI, "kind": "sms", "direction": "mo", "start": 1, "duration": 3},
     "only a voice record"),
    ({"imsi": IMSI, "kind": "voice", "direction": "mo", "start": 1, "duration": 90_000},
     "'duration'"),
    ({"imsi": IMSI, "kind": "voice", "direction": "mo", "start": 1, "duration": "NaN"},
     "'duration'"),
    ({"imsi": IMSI, "kind": "voice", "direction": "mo", "start": 1, "cost": 3},
     "unknown field 'cost'"),
    ({"imsi": IMSI, "kind": "voice", "direction": "mo", "start": 1, "counterpart": 49},
     "'counterpart' must be a string"),
])
def test_a_malformed_record_names_its_line(line: dict[str, object], message: str) -> None:
    good = json.dumps({"imsi": IMSI, "kind": "sms", "direction": "mo", "start": 1})
    text = good + "\n\n" + json.dumps(line) + "\n"
    with pytest.raises(InvalidInput, match="line 3: .*" + message.replace("'", ".")):
        parse_usage_records(text)


def test_csv_errors_name_the_line() -> None:
    with pytest.raises(InvalidInput, match="line 1: unknown column 'cost'"):
        parse_usage_records("imsi,kind,direction,start,cost\n")
    with pytest.raises(InvalidInput, match="line 3: 3 columns, the header has 4"):
        parse_usage_records(f"imsi,kind,direction,start\n{IMSI},sms,mo,1\n{IMSI},sms,mo\n")
    with pytest.raises(InvalidInput, match="line 2: 'direction'"):
        parse_usage_records(f"imsi,kind,direction,start\n{IMSI},sms,up,1\n")
    with pytest.raises(InvalidInput, match="line 1: not JSON"):
        parse_usage_records('{"imsi": \n', "jsonl")
    with pytest.raises(InvalidInput, match="longer than"):
        parse_usage_records("imsi\n" + "1" * 5000)
    with pytest.raises(InvalidInput, match="more than 1 usage records"):
        parse_usage_records(JSONL, limit=1)
    with pytest.raises(InvalidInput, match="format"):
        parse_usage_records(JSONL, "xml")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(max_size=300), st.sampled_from(["auto", "jsonl", "csv"]))
def test_the_decoder_fuzz_text(text: str, fmt: str) -> None:
    try:
        records = parse_usage_records(text, fmt)
    except InvalidInput:
        return
    for r in records:
        assert r.kind in ("voice", "sms")
        assert r.direction in ("mo", "mt")


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                    st.sampled_from([IMSI, ICCID, "voice", "sms", "mo", "mt", "60",
                                     "2026-12-01T10:00:00Z", 1796119200]))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(["imsi", "iccid", "kind", "direction", "start",
                                        "duration", "counterpart", "other"]), _VALUES,
                       max_size=8))
def test_the_decoder_fuzz_records(doc: dict[str, object]) -> None:
    try:
        record = usage_record(doc)
    except InvalidInput:
        return
    events, unknown = usage_events([record], lambda sim, by_iccid: (IMSI, "t"))
    assert unknown == 0
    assert events[0].kind == record.kind
    assert 0 <= events[0].duration <= 86_400
