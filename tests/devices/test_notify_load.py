"""The shared count and the server-side rate of the apart notification pass
(``simtrust.testing.devices.notify``)."""

from __future__ import annotations

from pathlib import Path

from simtrust.testing.devices import Drain, SharedCount


def test_a_count_written_through_one_mapping_is_read_through_another(tmp_path: Path) -> None:
    writer = SharedCount(tmp_path / "n.count", create=True)
    reader = SharedCount(writer.path)
    try:
        assert reader.read() == 0
        writer.write(12_345_678_901)
        assert reader.read() == 12_345_678_901
    finally:
        writer.close()
        reader.close()


def test_the_drain_publishes_every_delivery_and_times_from_its_start(tmp_path: Path) -> None:
    shared = SharedCount(tmp_path / "n.count", create=True)
    reader = SharedCount(shared.path)
    try:
        drain = Drain(shared, start=2)
        drain.bump()
        assert reader.read() == 1
        assert drain.first == 0.0
        assert drain.per_s() == 0.0  # nothing after the start yet
        drain.bump()
        assert reader.read() == 2
        assert drain.first == drain.last > 0
        assert drain.per_s() == 0.0
        drain.first -= 1.0  # the start delivery one second before the last
        drain.bump()
        drain.bump()
        assert reader.read() == 4
        assert 0 < drain.per_s() <= 2.0  # two deliveries after the start, ≥ 1 s apart
    finally:
        shared.close()
        reader.close()
