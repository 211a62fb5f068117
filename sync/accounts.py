"""Keycloak's accounts for the inactivity pass (``iacs.service.inactivity``): the port's adapter.

It connects as the sync worker's client (``iacs-sync``), on purpose, not as a client of its own:

- **Reading login events** needs ``realm-management`` ``view-events``, the one role added for
  this (``keycloak_config/realm.json``). It reads the realm's user events (logins, their IP
  addresses, failures) and admin events, nothing else: no realm settings, clients or secrets,
  and it writes nothing. Keycloak has no narrower right (no per-type or per-user event scope).
- **Disabling and re-enabling** a user is ``PUT users/{id}``, decided by the user ``manage``
  scope that the sync client already holds because Keycloak 26.5 cannot log a person out with
  less (see ``keycloak_config.apply``'s docstring). So this adds no write power to any
  credential; a second client holding ``manage`` for this would put that same power on one more
  secret. Closing ``manage`` for both (a narrower Keycloak scope or a logout service) is issue
  13, item 3, and then moves this too.

Which people count: the realm's users that come from the directory (``federationLink``), so
service accounts and Keycloak-only users are never disabled by it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from iacs.service.errors import NotFound, Unavailable
from iacs.service.ports import Account
from iacs.settings import KeycloakSettings, MissingSecret

from .gateway import KeycloakGateway, KeycloakUnavailable

EVENTS_PAGE = 500
T = TypeVar("T")


def _time(millis: object) -> datetime | None:
    return datetime.fromtimestamp(int(millis) / 1000, UTC) if isinstance(millis, int) else None


class KeycloakAccounts:
    """``iacs.service.ports.IdentityAccounts`` over the admin API, connected on first use."""

    def __init__(self, settings: KeycloakSettings) -> None:
        self._settings = settings
        self._gateway: KeycloakGateway | None = None
        self._lock = threading.Lock()

    def _admin(self) -> KeycloakGateway:
        """The sync client's gateway, made on first use; a process not given that client's
        secret (the portal's container in compose) gets a clear refusal, never a crash."""
        with self._lock:
            if self._gateway is None:
                try:
                    self._gateway = KeycloakGateway.from_settings(self._settings, workers=1)
                except MissingSecret as exc:
                    raise Unavailable(
                        f"accounts cannot be changed from this process: {exc} (run `iacs "
                        "accounts` where the sync worker runs)"
                    ) from None
            return self._gateway

    def sign_ins_recorded_since(self) -> datetime | None:
        oldest = self._get("events", first=0, max=1, direction="asc") or []
        return _time(oldest[0].get("time")) if oldest else None

    def accounts(self, since: datetime) -> list[Account]:
        last: dict[str, datetime] = {}
        first = 0
        while True:
            page = self._get(
                "events",
                type="LOGIN",
                dateFrom=str(int(since.timestamp() * 1000)),
                first=first,
                max=EVENTS_PAGE,
            )
            for event in page or ():
                at, user = _time(event.get("time")), event.get("userId")
                if at is None or not isinstance(user, str):
                    continue
                if user not in last or at > last[user]:
                    last[user] = at
            if not page or len(page) < EVENTS_PAGE:
                break
            first += EVENTS_PAGE
        users = self._admin_call(lambda gw: gw.get_all("users", briefRepresentation="false"))
        return [
            Account(
                username=user["username"],
                enabled=bool(user.get("enabled", True)),
                created_at=_time(user.get("createdTimestamp")),
                last_sign_in=last.get(user["id"]),
            )
            for user in users
            if user.get("federationLink") and user.get("username")
        ]

    def set_enabled(self, username: str, enabled: bool) -> None:
        gateway = self._admin()
        user_id = self._admin_call(lambda gw: gw.find_user_id(username))
        if user_id is None:
            raise NotFound(f"no account {username!r} in Keycloak")
        try:
            gateway.set_user_enabled(user_id, enabled)
            if not enabled:  # end the sessions now: the apps hear of it by back-channel logout
                gateway.log_out_user(user_id)
        except Exception as exc:  # python-keycloak's errors, the network's
            raise Unavailable(f"Keycloak refused to update {username}: {exc}") from exc

    def _get(self, path: str, **params: Any) -> list[dict[str, Any]]:
        return self._admin_call(lambda gw: gw.get(path, **params))

    def _admin_call(self, call: Callable[[KeycloakGateway], T]) -> T:
        try:
            return call(self._admin())
        except KeycloakUnavailable as exc:
            raise Unavailable(f"Keycloak: {exc}") from exc
