"""Why an ``iacs`` command failed, as one line an operator can act on (``iacs.cli`` uses it).

Every command reaches the same servers through the same layers, so the failures an operator
meets at start are few: the directory cannot be reached or refuses a service account's
password, Keycloak cannot be reached or refuses a client's credentials, a setting is invalid
or a secret unset. Each is recognised here by the project's own error types (and, for
Keycloak, python-keycloak's, with the HTTP status they carry), never by matching message
text, and said in one line naming what failed and where. Anything else is a bug and keeps
its traceback; ``iacs --debug`` keeps it for these too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from keycloak.exceptions import KeycloakAuthenticationError, KeycloakConnectionError, KeycloakError

from iacs.directory import AccessDenied, BindFailed, DirectoryUnavailable
from iacs.settings import MissingSecret, Settings, SettingsError
from iacs.stack.process import ServerStartError
from sync.gateway import KeycloakUnavailable

KeycloakIdentity = Literal["sync", "admin"]
"""Who a command signs in to Keycloak as: the sync worker's client or the master admin."""


@dataclass
class CommandContext:
    """What the translation needs to say "where": the settings the command loaded, if any."""

    settings: Settings | None = None
    keycloak_as: KeycloakIdentity = "sync"
    debug: bool = False
    """``iacs --debug``: every error keeps its traceback."""


def explain(error: BaseException, context: CommandContext) -> str | None:
    """One line for an operator, or None when ``error`` is not one this module knows."""
    if isinstance(error, SettingsError):
        return _one_line(str(error))
    if isinstance(error, MissingSecret | ServerStartError):
        return _one_line(str(error))
    for cause in _chain(error):
        if isinstance(cause, BindFailed):
            return _bind_failed(cause, context)
        if isinstance(cause, DirectoryUnavailable):
            detail = _one_line(str(cause)).removeprefix("cannot reach the directory: ")
            return f"cannot reach the directory at {_ldap_url(context)} ({detail})"
        if isinstance(cause, KeycloakError):
            return _keycloak(cause, context)
        if isinstance(cause, KeycloakUnavailable) and not _has_keycloak_cause(cause):
            return f"Keycloak at {_keycloak_url(context)} failed: {_one_line(str(cause))}"
        if isinstance(cause, AccessDenied):
            return f"the directory at {_ldap_url(context)} refused: {_one_line(str(cause))}"
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what caused it, outermost first (the service wraps directory errors)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _os_reason(error: BaseException) -> str | None:
    """The operating system's reason (``connection refused``) deepest in ``error``'s causes."""
    reasons = [
        cause.strerror.lower()
        for cause in _chain(error)
        if isinstance(cause, OSError) and cause.strerror
    ]
    return reasons[-1] if reasons else None


def _has_keycloak_cause(error: BaseException) -> bool:
    return any(isinstance(cause, KeycloakError) for cause in _chain(error))


def _bind_failed(error: BindFailed, context: CommandContext) -> str:
    account = _account_of(error.dn, context)
    who = f"the {account} account's" if account else "the bind"
    return f"the directory at {_ldap_url(context)} refused {who} password ({error.dn or '?'})"


def _account_of(dn: str, context: CommandContext) -> str | None:
    if context.settings is None or not dn:
        return None
    ldap = context.settings.ldap
    for account in ("portal", "sync", "keycloak"):
        if getattr(ldap, f"{account}_bind_dn").lower() == dn.lower():
            return account
    return None


def _keycloak(error: KeycloakError, context: CommandContext) -> str:
    url = _keycloak_url(context)
    if isinstance(error, KeycloakConnectionError):
        return f"cannot reach Keycloak at {url} ({_os_reason(error) or _one_line(str(error))})"
    status = getattr(error, "response_code", None)
    if isinstance(error, KeycloakAuthenticationError) or status in (400, 401):
        return f"Keycloak at {url} answered {status} for {_credentials_hint(context)}"
    if status == 403:
        who = _identity(context)
        return f"Keycloak at {url} answered 403: {who} lacks the admin rights it needs"
    return f"Keycloak at {url} answered {status}: {_one_line(str(error))}"


def _identity(context: CommandContext) -> str:
    if context.keycloak_as == "admin":
        name = context.settings.keycloak.admin_username if context.settings else "?"
        return f"admin {name}"
    client = context.settings.keycloak.sync_client_id if context.settings else "?"
    return f"client {client}"


def _credentials_hint(context: CommandContext) -> str:
    variable = (
        "IACS_KEYCLOAK__ADMIN_USERNAME / IACS_KEYCLOAK__ADMIN_PASSWORD"
        if context.keycloak_as == "admin"
        else "IACS_KEYCLOAK__SYNC_CLIENT_SECRET"
    )
    return f"{_identity(context)}: check {variable}"


def _ldap_url(context: CommandContext) -> str:
    return context.settings.ldap.url if context.settings else "(unknown URL)"


def _keycloak_url(context: CommandContext) -> str:
    return context.settings.keycloak.url if context.settings else "(unknown URL)"


def _one_line(text: str) -> str:
    return " ".join(text.split())
