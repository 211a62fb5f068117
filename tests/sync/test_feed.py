"""The change feed's durable cursor: atomic file, gap detection, never moving past unapplied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from sync.feed import ChangeFeed, CursorFile, generalized_time, parse_generalized_time


@dataclass(frozen=True)
class Change:
    cursor: str
    entry_id: str = ""


class Log:
    """An accesslog stand-in: reqStart values, oldest first, some purged."""

    def __init__(self, *cursors: str, log_id: str = "log-1") -> None:
        self.cursors = list(cursors)
        self.log_id = log_id

    def changes_since(self, cursor: str | None, *, limit: int = 1000) -> list[Change]:
        after = [c for c in self.cursors if cursor is None or c > cursor]
        return [Change(c, f"{self.log_id}:{c}") for c in after[:limit]]

    def oldest_change_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    def has_change(self, cursor: str, entry_id: str | None = None) -> bool:
        """Each log's entries have their own ids (a provider's entryUUIDs)."""
        return cursor in self.cursors and entry_id in (None, f"{self.log_id}:{cursor}")


def t(n: int) -> str:
    return f"20261129000000.{n:06d}Z"


def test_cursor_file_round_trip_and_atomic_replace(tmp_path) -> None:
    store = CursorFile(tmp_path / "var" / "cursor.json")
    assert store.load() == (None, True)
    store.save(t(1))
    store.save(t(2))
    assert store.load() == (t(2), True)
    assert [p.name for p in store.path.parent.iterdir()] == ["cursor.json"]  # no temp left


def test_unreadable_cursor_file_is_an_error_not_a_silent_restart(tmp_path) -> None:
    path = tmp_path / "cursor.json"
    path.write_text("{not json")
    with pytest.raises(RuntimeError, match="unreadable sync cursor"):
        CursorFile(path).load()


def test_no_cursor_is_a_gap_and_reads_everything(tmp_path) -> None:
    feed = ChangeFeed(Log(t(1), t(2), t(3)), CursorFile(tmp_path / "c.json"))
    batch = feed.pending()
    assert batch.gap
    assert [c.cursor for c in batch.changes] == [t(1), t(2), t(3)]
    assert batch.head == t(3)


def test_cursor_only_moves_when_the_batch_is_applied(tmp_path) -> None:
    log = Log(t(1), t(2))
    store = CursorFile(tmp_path / "c.json")
    store.save(t(1))
    feed = ChangeFeed(log, store)
    batch = feed.pending()
    assert not batch.gap and [c.cursor for c in batch.changes] == [t(2)]
    log.cursors.append(t(3))
    assert feed.pending().head == t(3)  # not applied: read again, with what came since
    feed.applied(batch)
    assert store.load() == (t(2), True)
    assert ChangeFeed(log, store).pending().head == t(3)  # a restart resumes after t(2)


def test_purged_past_the_cursor_is_a_gap(tmp_path) -> None:
    store = CursorFile(tmp_path / "c.json")
    store.save(t(1))
    batch = ChangeFeed(Log(t(5), t(6)), store).pending()
    assert batch.gap
    assert batch.head == t(6)


def test_long_backlog_is_drained_in_pages(tmp_path) -> None:
    store = CursorFile(tmp_path / "c.json")
    store.save(t(0))
    feed = ChangeFeed(Log(*(t(n) for n in range(0, 2501))), store, page=1000)
    batch = feed.pending()
    assert len(batch.changes) == 2500 and batch.head == t(2500)


def test_empty_log_without_cursor_starts_from_about_now_without_a_false_gap(tmp_path) -> None:
    log = Log()
    feed = ChangeFeed(log, CursorFile(tmp_path / "c.json"))
    batch = feed.pending()
    assert batch.gap and batch.changes == () and not batch.exact
    assert parse_generalized_time(batch.head) is not None
    feed.applied(batch)
    log.cursors.append(generalized_time(datetime.now(UTC)))  # newer than the time cursor
    after = ChangeFeed(log, CursorFile(tmp_path / "c.json")).pending()
    assert not after.gap and len(after.changes) == 1 and after.exact


def test_generalized_time_round_trip() -> None:
    moment = parse_generalized_time("20261129004512.123456Z")
    assert generalized_time(moment) == "20261129004512.123456Z"
    assert parse_generalized_time("garbage") is None


def test_a_late_entry_behind_the_cursor_is_still_read_once(tmp_path) -> None:
    """slapd logs a write when it ends with the reqStart of when it began: with two concurrent
    writers, an entry can appear behind the cursor after the cursor moved past it."""
    log = Log(t(1), t(3))
    feed = ChangeFeed(log, CursorFile(tmp_path / "cursor.json"))
    first = feed.pending()
    feed.applied(first)
    assert feed.cursor == t(3)
    assert feed.pending().changes == ()  # nothing new: no run

    log.cursors = [t(1), t(2), t(3)]  # the write that began at t(2) is logged only now
    late = feed.pending()
    assert [c.cursor for c in late.changes] == [t(2)]
    assert late.head == t(3)  # the cursor does not go back
    feed.applied(late)
    assert feed.pending().changes == ()  # and it is not read again


def test_a_cursor_the_log_does_not_hold_is_a_gap(tmp_path) -> None:
    """Another provider's log (a failover) holds other reqStart values: a full reconcile."""
    store = CursorFile(tmp_path / "c.json")
    store.save(t(5))
    feed = ChangeFeed(Log(t(1), t(4), t(6)), store)
    batch = feed.pending()
    assert batch.gap
    feed.applied(batch)
    assert feed.cursor == t(6)
    assert not feed.pending().gap  # the log it now follows holds its cursor


def test_a_cursor_from_another_log_is_a_gap_even_where_the_same_reqstart_exists(
    tmp_path,
) -> None:
    """slapd's reqStart is the second and a counter: two providers' logs share values."""
    store = CursorFile(tmp_path / "c.json")
    feed = ChangeFeed(Log(t(1), t(2), log_id="p2"), store)
    feed.applied(feed.pending())
    assert store.load_entry() == f"p2:{t(2)}" and feed.cursor == t(2)
    other = ChangeFeed(Log(t(1), t(2), t(3), log_id="p1"), store)  # after a failover
    batch = other.pending()
    assert batch.gap
    other.applied(batch)
    assert store.load_entry() == f"p1:{t(3)}" and other.cursor == t(3)
    assert not other.pending().gap


def test_after_a_failover_with_only_older_entries_the_cursor_becomes_a_time(tmp_path) -> None:
    """Idle after a failover: one full reconcile, not one on every poll."""
    store = CursorFile(tmp_path / "c.json")
    feed = ChangeFeed(Log(t(1), t(9), log_id="p2"), store)
    feed.applied(feed.pending())
    other = ChangeFeed(Log(t(1), t(4), t(7), log_id="p1"), store)  # within the overlap
    batch = other.pending()
    assert batch.gap and batch.head == t(9) and not batch.exact
    other.applied(batch)
    assert not other.pending().gap
