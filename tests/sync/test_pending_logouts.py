"""The durable record of owed logouts (``sync.pending_logouts``): a file, so no server needed."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from sync.pending_logouts import PendingLogouts


def _add_many(path: str, prefix: str) -> None:
    record = PendingLogouts(Path(path))
    for n in range(25):
        record.add([f"{prefix}{n}"])


def test_names_stay_until_discarded_and_survive_a_new_reader(tmp_path: Path) -> None:
    record = PendingLogouts(tmp_path / "state" / "cursor.logouts.json")
    assert record.load() == frozenset()
    record.add(["eve", "bob"])
    assert PendingLogouts(record.path).load() == {"eve", "bob"}  # as a restarted worker reads it
    record.discard(["bob", "nobody"])
    assert PendingLogouts(record.path).load() == {"eve"}
    record.discard(["eve"])
    assert record.load() == frozenset()


def test_two_workers_sharing_the_file_lose_no_name(tmp_path: Path) -> None:
    """A standby worker on the same state directory: concurrent read-modify-writes are locked."""
    path = tmp_path / "cursor.logouts.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(str(path), p)) for p in ("a", "b", "c")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert len(PendingLogouts(path).load()) == 75


def test_an_unreadable_record_stops_the_worker_rather_than_forgetting(tmp_path: Path) -> None:
    path = tmp_path / "cursor.logouts.json"
    path.write_text('{"usernames": "eve"}', encoding="utf-8")
    with pytest.raises(RuntimeError, match="unreadable pending-logouts file"):
        PendingLogouts(path).load()
