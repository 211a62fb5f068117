"""The sync worker's collaborators as it sees them: the directory and Keycloak's admin API.

``iacs.directory.Directory`` and ``sync.gateway.KeycloakGateway`` satisfy these structurally;
the worker and the applier are written against them, so a reader (and mypy) sees what each
stage asks of a server. The change feed's own port is ``sync.feed.ChangeSource``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from keycloak import KeycloakAdmin

from iacs.directory import DirectorySnapshot, Tree
from iacs.domain import Membership

from .feed import ChangeSource

T = TypeVar("T")
R = TypeVar("R")


class SyncDirectory(ChangeSource, Protocol):
    """The directory read as the sync account: the whole snapshot, one person, the feed."""

    @property
    def tree(self) -> Tree:
        """The layout of the tree (which DN is a person, a request, an audit record)."""
        ...

    def snapshot(self, *, page_size: int = ...) -> DirectorySnapshot: ...

    def memberships_of(self, username: str) -> frozenset[Membership]: ...


class KeycloakWrites(Protocol):
    """Keycloak's admin API as ``sync.apply`` uses it: counted writes, lookups, parallelism."""

    admin: KeycloakAdmin
    writes: Counter[str]

    def get(self, path: str, **params: Any) -> Any: ...

    def parallel(self, function: Callable[[T], R], items: Iterable[T]) -> list[R]: ...

    def client_uuid(self, client_id: str) -> str: ...

    def client_roles(self, client_id: str) -> dict[str, dict[str, Any]]: ...

    def has_user_federation(self) -> bool: ...

    def find_user_id(self, username: str) -> str | None: ...

    def session_ids(self, user_id: str) -> list[str]: ...

    def end_session(self, session_id: str) -> bool: ...

    def write(
        self, kind: str, call: Callable[[], T], tolerate: tuple[int, ...] = ...
    ) -> T | None: ...
