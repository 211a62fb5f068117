"""Logouts the worker owes: written down before the removal that makes them due, kept until done.

Why: a revocation is two writes to Keycloak, the membership removal and then the logout (with
the session sweep of ``sync.apply``). If Keycloak fails between them, or the worker is killed
there, the retried run diffs the directory against a Keycloak that no longer holds the
membership: it plans no removal, hence no logout, and the person's sessions live on with the
authority they had when they were issued. So each plan's logouts are recorded durably *before*
its first write, and a name leaves the record only once its logout and session sweep succeeded.
Every run finishes what the record holds (``SyncWorker``), also when its own plan is empty.

Where: a small JSON file beside the change-feed cursor (``SyncSettings.pending_logouts_file``,
default ``<cursor>.logouts.json``), written like the cursor (temporary file, fsync, rename, fsync
of the directory). The alternatives are worse: the directory is written only by the portal (the
sync account is read-only on purpose, see ``iacs.stack.slapd``), and a Keycloak user attribute
would be written through LDAP federation into that same directory. The record is part of the
worker's state exactly like the cursor: a standby worker that takes over must see the same
directory (a shared volume), or start with both files missing, which loses pending logouts
just as it already re-reads the feed. For that standby, every change is a read-modify-write
under an exclusive ``flock`` on ``<file>.lock``, so two workers sharing the directory never
lose each other's names (flock holds across processes on local filesystems; on NFS, use a
single active worker).

Logging a person out twice is harmless (their next login gets what the directory holds), so
the record errs on the side of too many: names are added for the whole plan before any write,
and kept when anything about their logout is uncertain.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from .feed import write_durably


class PendingLogouts:
    """The durable set of usernames whose logout is due and not yet confirmed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def load(self) -> frozenset[str]:
        """The usernames recorded now (empty when there is no file)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return frozenset()
        try:
            data = json.loads(text)
            names = data["usernames"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError("usernames must be a list of strings")
        except (ValueError, KeyError, TypeError) as exc:
            # Never silently forget owed logouts: refuse to run until an operator looks.
            raise RuntimeError(f"unreadable pending-logouts file {self.path}: {exc}") from exc
        return frozenset(names)

    def add(self, usernames: Iterable[str]) -> None:
        """Record ``usernames`` (durably, before the caller goes on)."""
        names = frozenset(usernames)
        if not names:
            return
        with self._locked():
            current = self.load()
            if not names <= current:
                self._save(current | names)

    def discard(self, usernames: Iterable[str]) -> None:
        """Forget ``usernames``: their logout and session sweep are done."""
        names = frozenset(usernames)
        if not names:
            return
        with self._locked():
            current = self.load()
            if current & names:
                self._save(current - names)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a", encoding="utf-8") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _save(self, names: frozenset[str]) -> None:
        payload = json.dumps(
            {"usernames": sorted(names), "saved_at": datetime.now(UTC).isoformat()}
        )
        write_durably(self.path, payload)
