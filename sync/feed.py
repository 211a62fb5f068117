"""The directory's change feed as the worker follows it: a durable cursor over ``cn=accesslog``.

``iacs.directory`` reads the accesslog (``(reqStart>=cursor)`` with ldap3, see
``iacs/directory/changes.py``); this module keeps the worker's place in it. The cursor is the
``reqStart`` of the last change whose effect is in Keycloak, kept in a small JSON file written
atomically (temporary file, fsync, rename), and it only moves when the worker says a batch was
applied. A cursor older than the oldest retained entry, or an empty log, means the log was
purged past it (a gap): the worker must then reconcile fully.

Replicated providers: each provider's accesslog logs every write it applies (its own and the
replicated ones) at its own time, so a cursor is the reqStart of an entry in ONE provider's
log. slapd's reqStart is a second and a counter, so two providers' logs hold the same values:
the cursor file also records the entryUUID of the cursor's own log entry, which each provider
makes for itself. When the worker's connection fails over to another provider, that log has
no such entry: the feed reports a gap and the worker reconciles in full against the provider
it now reads, then follows that provider's log from there. Nothing is lost: what the full
reconcile read is in Keycloak, and everything after it is in the log it now follows.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from iacs.directory.errors import InvalidEntry
from iacs.directory.mapping import from_generalized_time, to_generalized_time

CLOCK_MARGIN = timedelta(seconds=60)

OVERLAP = timedelta(seconds=5)
"""How far behind its cursor the feed looks again. slapd stamps ``reqStart`` when a write starts
but logs the entry when the write ends, so with concurrent writers an entry can land behind one
the worker has already read. Entries in this window that were already applied are skipped;
re-applying one would be harmless anyway (the runs are idempotent), only wasted."""


class ChangeSource(Protocol):
    """What the feed needs of ``iacs.directory.Directory``."""

    def changes_since(self, cursor: str | None, *, limit: int = 1000) -> list: ...

    def oldest_change_cursor(self) -> str | None: ...

    def has_change(self, cursor: str, entry_id: str | None = None) -> bool: ...


class CursorFile:
    """The durable cursor: read at start, replaced atomically after each applied batch."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> tuple[str | None, bool]:
        """The saved cursor (None if none) and whether it is the reqStart of a real entry."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, True
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"unreadable sync cursor file {self.path}: {exc}") from exc
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if not isinstance(cursor, str) or not cursor:
            return None, True
        return cursor, data.get("exact", True) is not False

    def load_entry(self) -> str | None:
        """The entryUUID of the cursor's own log entry (None: not recorded)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"unreadable sync cursor file {self.path}: {exc}") from exc
        entry = data.get("entry") if isinstance(data, dict) else None
        return entry if isinstance(entry, str) and entry else None

    def save(self, cursor: str, exact: bool = True, entry: str | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record: dict[str, object] = {"cursor": cursor, "exact": exact}
        if entry is not None:
            record["entry"] = entry
        record["saved_at"] = datetime.now(UTC).isoformat()
        write_durably(self.path, json.dumps(record))


def write_durably(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves the old or the new file, never a
    torn one: a temporary file beside it, fsync'd, renamed over it, and the folder fsync'd."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass(frozen=True, slots=True)
class Batch:
    """The changes after the cursor, and whether a full reconcile is needed first."""

    changes: tuple
    head: str | None
    """The cursor to save once this batch is applied (the last change's), or None: no change."""
    gap: bool
    """The cursor is missing or older than the log: some changes can no longer be read."""
    exact: bool = True
    """False when ``head`` is a point in time rather than the reqStart of a real entry."""
    entry: str | None = None
    """The entryUUID of ``head``'s own log entry, when it is one."""

    def oldest_time(self) -> datetime | None:
        """When the oldest change of the batch was written (for the lag metric)."""
        return parse_generalized_time(self.changes[0].cursor) if self.changes else None


class ChangeFeed:
    """Reads what was written after the saved cursor; saves the cursor when told."""

    def __init__(self, source: ChangeSource, cursor_file: CursorFile, page: int = 1000) -> None:
        self.source = source
        self.cursor_file = cursor_file
        self.page = page
        self.cursor, self.exact = cursor_file.load()
        self.entry = cursor_file.load_entry()
        """The entryUUID of the cursor's log entry: which provider's log the cursor is in."""
        self._seen: set[str] = {self.cursor} if self.cursor else set()
        """reqStart values applied within ``OVERLAP`` behind the cursor. After a restart only
        the cursor's own entry is known: the rest of the window is read again, harmlessly."""

    def pending(self) -> Batch:
        """Every change after the cursor (drained page by page), and whether there is a gap."""
        gap = self.cursor is None
        if not gap and self.exact:  # the cursor's own entry, or later ones, were purged
            oldest = self.source.oldest_change_cursor()
            # An empty log is a gap too: the cursor's entry is gone, and so is anything after it.
            gap = oldest is None or self.cursor is None or oldest > self.cursor
        gap = gap or self._foreign()
        low = self._overlap_start()
        read: list = []
        cursor = low
        while True:
            page = self.source.changes_since(cursor, limit=self.page)
            read.extend(page)
            if len(page) < self.page:
                break
            cursor = page[-1].cursor
        # Checked again after the read: a failover between the check and the read would
        # otherwise let a foreign log's entry become the cursor unnoticed.
        gap = gap or self._foreign()
        changes = [change for change in read if change.cursor not in self._seen]
        if changes:
            newest = max(changes, key=lambda change: change.cursor)
            head, entry, exact = newest.cursor, getattr(newest, "entry_id", None) or None, True
            if self.cursor is not None and self.cursor > head:
                head = self.cursor  # only late arrivals behind the cursor: it stays put
                # After a gap the cursor is no entry of this log (another provider's, or
                # purged): kept as a point in time, so it is not found "missing" every poll.
                exact = self.exact and not gap
                entry = self.entry if exact else None
            return Batch(changes=tuple(changes), head=head, gap=gap, exact=exact, entry=entry)
        if gap:
            # Nothing retained to stand on: start from a little before now (slapd's clock may
            # differ a bit); changes re-read from that margin are applied again, harmlessly.
            # A cursor newer than that (the log emptied soon after it) is kept, as a time.
            moment = generalized_time(datetime.now(UTC) - CLOCK_MARGIN)
            head = max(moment, self.cursor) if self.cursor else moment
            return Batch(changes=(), head=head, gap=True, exact=False)
        return Batch(changes=(), head=None, gap=False)

    def _foreign(self) -> bool:
        """Whether the cursor is not a place in the log read now: its own entry (that
        reqStart AND that entryUUID) is not there, because the log is another provider's
        (each provider logs every write at its own time; a reqStart alone proves nothing, as
        slapd's is the second plus a counter and two logs hold the same values) or because it
        was purged. Either way the changes between the cursor and this log's entries are
        unknown: a gap."""
        if self.cursor is None or not self.exact:
            return False
        return not self.source.has_change(self.cursor, self.entry)

    def applied(self, batch: Batch) -> None:
        """Move the cursor past ``batch`` (only after its effect is in Keycloak)."""
        if batch.head is None:
            return
        self._seen.update(change.cursor for change in batch.changes)
        later = self.cursor is None or batch.head > self.cursor
        now_a_time = batch.head == self.cursor and self.exact and not batch.exact
        if later or now_a_time:  # a time cursor is never checked for a gap again
            self.cursor_file.save(batch.head, exact=batch.exact, entry=batch.entry)
            self.cursor, self.exact, self.entry = batch.head, batch.exact, batch.entry
        low = self._overlap_start()
        if low is not None:
            self._seen = {seen for seen in self._seen if seen >= low}

    def _overlap_start(self) -> str | None:
        """Where reading starts: ``OVERLAP`` behind the cursor (None: from the beginning)."""
        if self.cursor is None:
            return None
        moment = parse_generalized_time(self.cursor)
        return generalized_time(moment - OVERLAP) if moment else self.cursor


def generalized_time(moment: datetime) -> str:
    """An aware datetime in slapd's reqStart form (``YYYYmmddHHMMSS.ffffffZ``, UTC)."""
    return to_generalized_time(moment, fraction="micro")


def parse_generalized_time(value: str) -> datetime | None:
    """``20261129004512.123456Z`` (slapd's reqStart) as an aware datetime; None if unparsable."""
    try:
        return from_generalized_time(value)
    except InvalidEntry:
        return None
