"""A small pool of ldap3 connections, bound as one service account, with one retry on a drop.

Why a pool and not ``SAFE_SYNC``: ldap3's SAFE_SYNC strategy makes one Connection usable from
many threads by holding the connection's lock for each whole operation, so every thread of the
portal would queue behind the slowest search on a single socket. A pool of plain ``SYNC``
connections gives each thread its own socket for the duration of one operation (bounded by
``pool_size``; a thread waits for a free connection up to the configured timeout), so
concurrent requests are served concurrently and slapd sees real parallel writes (which the
ORG-2 and DEC-3 tests rely on). Connections are bound once and reused.

Dropped connections: before reuse, an idle connection whose socket is readable (the server
closed it, or sent a notice of disconnection) is replaced. If a connection still fails during an
operation, it is discarded and the operation is retried once on a fresh connection when that is
safe: reads and idempotent writes always, other writes only when the request never left (the
connection could not be opened). Otherwise ``DirectoryUnavailable`` says the outcome is unknown.

TLS: an ``ldaps://`` URL is verified against ``ca_file`` (``IACS_LDAP__CA_FILE``) or, without
one, the system's trusted CAs: the certificate must chain to them and name the host
(``ldap3.Tls(validate=CERT_REQUIRED)``; ldap3 verifies nothing unless told to). A plain
``ldap://`` URL is only accepted outside production (``iacs.settings`` refuses it there).

No schema is read (``get_info=NONE``) and searches are decoded by ``wire`` from the raw
response bytes: ldap3's own entry decoding was most of the cost of a 10,000-person snapshot.
"""

from __future__ import annotations

import contextlib
import math
import select
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import ldap3
from ldap3.core.exceptions import (
    LDAPBindError,
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
    LDAPSocketOpenError,
)
from ldap3.core.results import RESULT_CODES

from iacs.directory import wire
from iacs.directory.errors import (
    AccessDenied,
    AlreadyExists,
    BindFailed,
    DirectoryError,
    DirectoryUnavailable,
    InvalidEntry,
    NotFound,
)

T = TypeVar("T")

SUCCESS = 0
SIZE_LIMIT_EXCEEDED = 4
NO_SUCH_ATTRIBUTE = 16
CONSTRAINT_VIOLATION = 19
ATTRIBUTE_OR_VALUE_EXISTS = 20
NO_SUCH_OBJECT = 32
INVALID_DN_SYNTAX = 34
INSUFFICIENT_ACCESS = 50
NOT_ALLOWED_ON_NON_LEAF = 66
ENTRY_ALREADY_EXISTS = 68
ASSERTION_FAILED = 122

_INVALID = {17, 18, 19, 21, 34, 64, 65, 67, 69}
_UNAVAILABLE = {51, 52}

Entry = tuple[str, dict[str, list[str]]]
"""A search result: the DN and ``{lower-case attribute: [values]}``."""


def error_for(result: Mapping[str, Any], dn: str = "") -> DirectoryError:
    """The typed error for an LDAP result that is not success."""
    code = int(result.get("result", 80))
    text = f"{result.get('description', 'error')} ({code})"
    message = result.get("message") or ""
    where = f" on {dn}" if dn else ""
    full = f"{text}{where}{': ' + message if message else ''}"
    if code == NO_SUCH_OBJECT:
        return NotFound(full, result_code=code, dn=dn)
    if code == ENTRY_ALREADY_EXISTS:
        return AlreadyExists(full, result_code=code, dn=dn)
    if code == INSUFFICIENT_ACCESS:
        return AccessDenied(full, result_code=code, dn=dn)
    if code in _INVALID:
        return InvalidEntry(full, result_code=code, dn=dn)
    if code in _UNAVAILABLE:
        return DirectoryUnavailable(full, result_code=code, dn=dn)
    return DirectoryError(full, result_code=code, dn=dn)


def ldap_server(
    url: str, *, ca_file: Path | str | None = None, timeout: float = 5.0
) -> ldap3.Server:
    """The ldap3 ``Server`` for ``url``; for ``ldaps://`` one that verifies the certificate.

    The certificate must chain to ``ca_file`` (or, without it, to the system's CAs) and name
    the URL's host; TLS 1.2 is the minimum (Python's default context). ldap3 alone would
    accept any certificate, hence this one place that builds servers.
    """
    if ca_file is not None and not Path(ca_file).is_file():
        raise ValueError(f"the LDAP CA file {ca_file} does not exist")
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=str(ca_file) if ca_file is not None else None,
    )
    return ldap3.Server(
        url,
        use_ssl=url.lower().startswith("ldaps://"),
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=timeout,
    )


def decode(raw_attributes: Mapping[str, Sequence[bytes]]) -> dict[str, list[str]]:
    """Raw attribute values as UTF-8 strings under lower-case names."""
    return {
        name.lower(): [value.decode("utf-8", errors="replace") for value in values]
        for name, values in raw_attributes.items()
    }


class ConnectionPool:
    """Bound ldap3 connections to one server as one account, lent to one thread at a time."""

    def __init__(
        self,
        url: str,
        bind_dn: str,
        password: str,
        *,
        timeout: float,
        size: int = 8,
        label: str = "",
        ca_file: Path | str | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        ldap_server(url, ca_file=ca_file, timeout=timeout)  # a bad URL or CA fails here
        self._url, self._ca_file = url, ca_file
        self._bind_dn = bind_dn
        self._password = password
        self._timeout = timeout
        self._label = label or bind_dn
        self._idle: list[ldap3.Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    # -- lending ---------------------------------------------------------------------------

    def _open(self) -> ldap3.Connection:
        connection = ldap3.Connection(
            # A Server per connection: ldap3 marks an address that failed once unusable for
            # 5 s and then reports only "invalid server address", hiding the real cause.
            ldap_server(self._url, ca_file=self._ca_file, timeout=self._timeout),
            self._bind_dn,
            self._password,
            client_strategy=ldap3.SYNC,
            # ldap3 packs the receive timeout as whole seconds (SO_RCVTIMEO "LL").
            receive_timeout=max(1, math.ceil(self._timeout)),
            check_names=False,
            raise_exceptions=False,
            return_empty_attributes=False,
        )
        try:
            connection.open()
            if not connection.bind():
                result = dict(connection.result or {})
                connection.unbind()
                if result.get("result") in _UNAVAILABLE:
                    raise error_for(result)
                raise BindFailed(
                    f"cannot bind as {self._label}: {result.get('description', 'error')}",
                    result_code=result.get("result"),
                    dn=self._bind_dn,
                )
        except LDAPBindError as exc:
            raise BindFailed(f"cannot bind as {self._label}: {exc}", dn=self._bind_dn) from exc
        return connection

    @staticmethod
    def _stale(connection: ldap3.Connection) -> bool:
        """An idle LDAP connection has nothing to read unless the server closed or dropped it."""
        if connection.closed or connection.socket is None:
            return True
        try:
            readable, _, _ = select.select([connection.socket], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _checkout(self) -> ldap3.Connection:
        if self._closed:
            raise DirectoryUnavailable("the directory connection pool is closed")
        if not self._slots.acquire(timeout=self._timeout):
            raise DirectoryUnavailable(f"no free LDAP connection within {self._timeout:.0f}s")
        try:
            while True:
                with self._lock:
                    connection = self._idle.pop() if self._idle else None
                if connection is None:
                    return self._open()
                if not self._stale(connection):
                    return connection
                _quiet_unbind(connection)
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, connection: ldap3.Connection) -> None:
        with self._lock:
            if self._closed:
                _quiet_unbind(connection)
            else:
                self._idle.append(connection)
        self._slots.release()

    def _discard(self, connection: ldap3.Connection) -> None:
        _quiet_unbind(connection)
        self._slots.release()

    def run(self, operation: Callable[[ldap3.Connection], T], *, idempotent: bool) -> T:
        """Run ``operation`` on a lent connection; retry once on a drop when that is safe."""
        first_failure: LDAPSocketOpenError | None = None
        for attempt in (1, 2):
            try:
                connection = self._checkout()
            except LDAPSocketOpenError as exc:
                if attempt == 1:
                    first_failure = exc
                    continue
                # ldap3 answers a retry with "invalid server address": name the real cause
                # (a refused certificate, a refused connection) from the first attempt.
                raise DirectoryUnavailable(
                    f"cannot reach the directory: {first_failure or exc}"
                ) from exc
            except LDAPException as exc:
                raise DirectoryUnavailable(f"cannot reach the directory: {exc}") from exc
            try:
                value = operation(connection)
            except (LDAPCommunicationError, LDAPResponseTimeoutError, OSError) as exc:
                self._discard(connection)
                if attempt == 1 and (idempotent or isinstance(exc, LDAPSocketOpenError)):
                    continue
                raise DirectoryUnavailable(
                    f"the directory connection failed during the operation: {exc}"
                ) from exc
            except LDAPException as exc:
                self._checkin(connection)
                raise DirectoryError(f"LDAP client error: {exc}") from exc
            except BaseException:
                self._discard(connection)
                raise
            self._checkin(connection)
            return value
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Unbind every idle connection; lent ones are unbound when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            _quiet_unbind(connection)

    # -- operations --------------------------------------------------------------------------

    def search(
        self,
        base: str,
        search_filter: str,
        *,
        scope: str = ldap3.SUBTREE,
        attributes: Iterable[str] = ("1.1",),
        size_limit: int = 0,
        page_size: int = 500,
        missing_ok: bool = True,
    ) -> list[Entry]:
        """Every entry matching (paged), decoded. A missing base gives [] when ``missing_ok``."""
        entries: list[Entry] = []
        self.search_raw(
            base,
            search_filter,
            lambda dn, raw: entries.append((dn, decode(raw))),
            scope=scope,
            attributes=attributes,
            size_limit=size_limit,
            page_size=page_size,
            missing_ok=missing_ok,
        )
        return entries

    def search_raw(
        self,
        base: str,
        search_filter: str,
        on_entry: Callable[[str, Mapping[str, Sequence[bytes]]], None],
        *,
        scope: str = ldap3.SUBTREE,
        attributes: Iterable[str] = ("1.1",),
        size_limit: int = 0,
        page_size: int = 500,
        missing_ok: bool = True,
    ) -> None:
        """Call ``on_entry(dn, raw_attributes)`` per match; a failed paged search is rerun once."""
        wanted = list(attributes)

        def paged(connection: ldap3.Connection) -> list[tuple[str, Mapping[str, Sequence[bytes]]]]:
            found: list[tuple[str, Mapping[str, Sequence[bytes]]]] = []
            cookie = b""
            while True:
                page = wire.search_page(
                    connection,
                    base,
                    search_filter,
                    scope=scope,
                    attributes=wanted,
                    size_limit=size_limit,
                    page_size=page_size if scope != ldap3.BASE else None,
                    cookie=cookie,
                    on_entry=lambda dn, raw: found.append((dn, raw)),
                )
                if page.code in (NO_SUCH_OBJECT, INVALID_DN_SYNTAX) and missing_ok:
                    return []
                if page.code not in (SUCCESS, SIZE_LIMIT_EXCEEDED):
                    result = {
                        "result": page.code,
                        "description": RESULT_CODES.get(page.code, "error"),
                        "message": page.message,
                    }
                    raise error_for(result, base)
                if not page.cookie or page.code == SIZE_LIMIT_EXCEEDED:
                    return found
                if size_limit and len(found) >= size_limit:
                    return found[:size_limit]
                cookie = page.cookie

        for dn, raw in self.run(paged, idempotent=True):
            on_entry(dn, raw)

    def read(self, dn: str, attributes: Iterable[str]) -> dict[str, list[str]] | None:
        """One entry's attributes, or None when it does not exist."""
        found = self.search(dn, "(objectClass=*)", scope=ldap3.BASE, attributes=attributes)
        return found[0][1] if found else None

    def _write(
        self,
        dn: str,
        send: Callable[[ldap3.Connection], object],
        *,
        allow: Iterable[int],
        idempotent: bool,
    ) -> int:
        allowed = {SUCCESS, *allow}

        def operation(connection: ldap3.Connection) -> int:
            send(connection)
            result = connection.result or {}
            code = int(result.get("result", 80))
            if code not in allowed:
                raise error_for(result, dn)
            return code

        return self.run(operation, idempotent=idempotent)

    def add(
        self,
        dn: str,
        attributes: Mapping[str, Sequence[str]],
        *,
        allow: Iterable[int] = (),
    ) -> int:
        """Add an entry; the result code when it is success or in ``allow``, else a typed error."""
        payload = {name: list(values) for name, values in attributes.items()}
        return self._write(
            dn,
            lambda connection: connection.add(dn, attributes=payload),  # type: ignore[no-untyped-call]
            allow=allow,
            idempotent=False,
        )

    def modify(
        self,
        dn: str,
        changes: Mapping[str, Sequence[tuple[str, Sequence[str]]]],
        *,
        allow: Iterable[int] = (),
        idempotent: bool = True,
        controls: Sequence[tuple[str, bool, bytes]] | None = None,
    ) -> int:
        """Apply ``{attribute: [(MODIFY_*, values), ...]}`` atomically (one LDAP modify)."""
        payload = {
            name: [(op, list(values)) for op, values in ops] for name, ops in changes.items()
        }
        return self._write(
            dn,
            lambda connection: connection.modify(dn, payload, controls=controls),  # type: ignore[no-untyped-call]
            allow=allow,
            idempotent=idempotent,
        )

    def delete(self, dn: str, *, allow: Iterable[int] = ()) -> int:
        return self._write(
            dn,
            lambda connection: connection.delete(dn),  # type: ignore[no-untyped-call]
            allow=allow,
            idempotent=True,
        )

    def set_password(self, dn: str, password: str) -> None:
        """Password Modify extended operation (RFC 3062): slapd hashes with ``password-hash``."""
        self._write(
            dn,
            lambda connection: connection.extend.standard.modify_password(
                user=dn, new_password=password
            ),
            allow=(),
            idempotent=True,
        )

    def who_am_i(self) -> str:
        return self.run(
            lambda connection: connection.extend.standard.who_am_i() or "", idempotent=True
        )


def _quiet_unbind(connection: ldap3.Connection) -> None:
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()
