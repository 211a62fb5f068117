"""The outbox of notifications (``ou=outbox``): one entry per e-mail owed to one person.

Written by the sync account only (``directory_schema/slapd.conf.in``): the notifier adds a
notice derived from an audit record, claims it (``pending`` -> ``sending``, one atomic modify
that fails for the second claimant), and marks it ``sent`` or puts it back with a later
``iacsNextAttemptAt``. Entries are never deleted by the account, so a sent marker is the record
that the mail went out. ``cn=cursor`` keeps how far the audit record has been read.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import ldap3

from iacs.directory import filters
from iacs.directory.connection import ENTRY_ALREADY_EXISTS, NO_SUCH_ATTRIBUTE, ConnectionPool
from iacs.directory.dn import Tree, escape_value
from iacs.directory.mapping import (
    AUDIT_ATTRIBUTES,
    NOTICE,
    NOTICE_ATTRIBUTES,
    audit_from,
    first,
    from_generalized_time,
    to_generalized_time,
)
from iacs.domain import AuditRecord, Notice, NoticeState

CURSOR_RDN = "cn=cursor"


class OutboxStore:
    """The part of ``Directory`` that keeps the outbox (see the module's docstring)."""

    _pool: ConnectionPool
    tree: Tree

    @property
    def _outbox(self) -> str:
        return f"ou=outbox,{self.tree.base}"

    def _notice_dn(self, notice_id: str) -> str:
        return f"cn={escape_value(notice_id)},{self._outbox}"

    def add_notice(self, notice: Notice, at: datetime) -> bool:
        """Owe ``notice`` (due at ``at``); False when a notice with its id is already owed."""
        entry = NOTICE.encode(
            replace(
                notice,
                state=NoticeState.PENDING,
                attempts=0,
                next_attempt_at=at,
                sent_at=None,
                detail="",
            )
        )
        code = self._pool.add(self._notice_dn(notice.id), entry, allow=(ENTRY_ALREADY_EXISTS,))
        return code != ENTRY_ALREADY_EXISTS

    def get_notice(self, notice_id: str) -> Notice | None:
        found = self._pool.read(self._notice_dn(notice_id), NOTICE_ATTRIBUTES)
        return NOTICE.decode(found) if found else None

    def find_notices(
        self,
        *,
        state: NoticeState | None = None,
        due_before: datetime | None = None,
        audit_id: str | None = None,
        limit: int = 0,
    ) -> list[Notice]:
        """Notices by state, by due time (``iacsNextAttemptAt <= due_before``), by audit record."""
        criteria = [filters.eq("objectClass", "iacsNotice")]
        if state is not None:
            criteria.append(filters.eq("iacsNoticeState", state.value))
        if due_before is not None:
            criteria.append(filters.at_most("iacsNextAttemptAt", due_before))
        if audit_id is not None:
            criteria.append(filters.eq("iacsAuditId", audit_id))
        found = self._pool.search(
            self._outbox,
            filters.all_of(*criteria),
            scope=ldap3.LEVEL,
            attributes=NOTICE_ATTRIBUTES,
            size_limit=limit,
        )
        notices = [NOTICE.decode(attributes) for _, attributes in found]
        return sorted(notices, key=lambda n: (n.next_attempt_at or datetime.min, n.id))

    def audit_ids_with_notices(self, audit_ids: list[str]) -> set[str]:
        """Which of these audit records already have a notice in the outbox (chunked ORs)."""
        found: set[str] = set()
        for start in range(0, len(audit_ids), 100):
            chunk = audit_ids[start : start + 100]
            criteria = filters.all_of(
                filters.eq("objectClass", "iacsNotice"),
                filters.any_of(filters.eq("iacsAuditId", audit_id) for audit_id in chunk),
            )
            for _, attributes in self._pool.search(
                self._outbox, criteria, scope=ldap3.LEVEL, attributes=("iacsAuditId",)
            ):
                found.add(first(attributes, "iacsAuditId").lower())
        return {audit_id for audit_id in audit_ids if audit_id.lower() in found}

    def claim_notice(self, notice: Notice, at: datetime) -> bool:
        """Move a notice from its current state to ``sending`` (the claim time in ``at``).

        One modify that deletes the state value it expects: of two claimants, only one finds
        it, so one notice is sent by one process. False when someone else claimed it first.
        """
        code = self._pool.modify(
            self._notice_dn(notice.id),
            {
                "iacsNoticeState": [
                    (ldap3.MODIFY_DELETE, [notice.state.value]),
                    (ldap3.MODIFY_ADD, [NoticeState.SENDING.value]),
                ],
                "iacsNextAttemptAt": [(ldap3.MODIFY_REPLACE, [to_generalized_time(at)])],
            },
            allow=(NO_SUCH_ATTRIBUTE,),
            idempotent=False,
        )
        return code != NO_SUCH_ATTRIBUTE

    def mark_notice_sent(self, notice_id: str, at: datetime) -> None:
        self._pool.modify(
            self._notice_dn(notice_id),
            {
                "iacsNoticeState": [(ldap3.MODIFY_REPLACE, [NoticeState.SENT.value])],
                "iacsSentAt": [(ldap3.MODIFY_REPLACE, [to_generalized_time(at)])],
            },
        )

    def retry_notice(
        self, notice_id: str, *, attempts: int, next_at: datetime, error: str, failed: bool
    ) -> None:
        """Record a failed try: back to ``pending`` (tried again at ``next_at``), or ``failed``."""
        state = NoticeState.FAILED if failed else NoticeState.PENDING
        self._pool.modify(
            self._notice_dn(notice_id),
            {
                "iacsNoticeState": [(ldap3.MODIFY_REPLACE, [state.value])],
                "iacsAttempts": [(ldap3.MODIFY_REPLACE, [str(attempts)])],
                "iacsNextAttemptAt": [(ldap3.MODIFY_REPLACE, [to_generalized_time(next_at)])],
                "iacsDetail": [(ldap3.MODIFY_REPLACE, [error[:500]])],
            },
        )

    def get_audit_record(self, audit_id: str) -> AuditRecord | None:
        """One audit record by id (the source of a notice)."""
        found = self._pool.read(self.tree.audit_record(audit_id), AUDIT_ATTRIBUTES)
        return audit_from(found) if found else None

    def outbox_cursor(self) -> datetime | None:
        """How far the audit record has been turned into notices (None: never)."""
        found = self._pool.read(f"{CURSOR_RDN},{self._outbox}", ("iacsAt",))
        value = first(found, "iacsAt") if found else ""
        return from_generalized_time(value) if value else None

    def set_outbox_cursor(self, at: datetime) -> None:
        dn = f"{CURSOR_RDN},{self._outbox}"
        stamp = to_generalized_time(at)
        code = self._pool.add(
            dn,
            {"objectClass": ["iacsOutboxCursor"], "cn": ["cursor"], "iacsAt": [stamp]},
            allow=(ENTRY_ALREADY_EXISTS,),
        )
        if code == ENTRY_ALREADY_EXISTS:
            self._pool.modify(dn, {"iacsAt": [(ldap3.MODIFY_REPLACE, [stamp])]})
