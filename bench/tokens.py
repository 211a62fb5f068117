"""Talking to Keycloak the way the benchmarks need: tokens for people, admin calls, JWT claims.

Everything here is plain ``requests`` on one ``Session`` per caller, so the cost measured is the
server's, not a client library's. JWT payloads are decoded without verification: the benchmark
only looks for a claim in a token Keycloak has just issued to it over loopback.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import requests


def decode_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT (no signature check: see the module docstring)."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, str) and value[:1] in "{[":
        try:
            decoded = json.loads(value)
        except ValueError:
            return
        yield from _walk(decoded)


def has_affiliation(claims: Mapping[str, Any], *scope_values: str) -> bool:
    """True when one object in the claims (JSON strings included) names every ``scope_values``.

    The claim's exact shape is docs/claims.md's business; the benchmark only needs to know that
    the affiliation with this organization and this group has arrived, so it looks for one
    JSON object whose values contain all of them (a group id alone is not unique).
    """
    wanted = set(scope_values)
    for node in _walk(dict(claims)):
        if isinstance(node, Mapping):
            values = {str(v) for v in node.values() if isinstance(v, str | int)}
            if wanted <= values:
                return True
    return False


class OidcClient:
    """Password and refresh grants of one client of one realm, on one HTTP session."""

    def __init__(
        self, base_url: str, realm: str, client_id: str, client_secret: str | None = None
    ) -> None:
        self.token_url = f"{base_url.rstrip('/')}/realms/{realm}/protocol/openid-connect/token"
        self.client_id = client_id
        self.client_secret = client_secret
        self.session = requests.Session()

    def _form(self, **fields: str) -> dict[str, str]:
        form = {"client_id": self.client_id, **fields}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        return form

    def password(self, username: str, password: str) -> dict[str, Any]:
        response = self.session.post(
            self.token_url,
            data=self._form(
                grant_type="password", username=username, password=password, scope="openid"
            ),
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"password grant for {username} on {self.client_id}: "
                f"HTTP {response.status_code} {response.text[:300]}"
            )
        return response.json()

    def refresh(self, refresh_token: str) -> requests.Response:
        """The raw answer: 200 with new tokens, or 400 ``invalid_grant`` once the session ended."""
        return self.session.post(
            self.token_url,
            data=self._form(grant_type="refresh_token", refresh_token=refresh_token),
            timeout=30,
        )


class AdminApi:
    """The master realm's admin on one session, with its token renewed before it expires."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.session = requests.Session()
        self._token_until = 0.0
        self._lock = threading.Lock()

    def _authorize(self) -> None:
        with self._lock:
            if time.monotonic() < self._token_until:
                return
            response = self.session.post(
                f"{self.base_url}/realms/master/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": self.username,
                    "password": self.password,
                },
                timeout=30,
            )
            response.raise_for_status()
            token = response.json()
            self.session.headers["Authorization"] = f"Bearer {token['access_token']}"
            self._token_until = time.monotonic() + max(5.0, token.get("expires_in", 60) - 15)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """``method`` on ``/admin/realms/<path>``; raises on an HTTP error."""
        self._authorize()
        kwargs.setdefault("timeout", 60)
        response = self.session.request(method, f"{self.base_url}/admin/realms/{path}", **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response

    def get(self, path: str, **params: Any) -> Any:
        response = self.request("GET", path, params=params)
        return response.json() if response.content else None

    def client(self, realm: str, client_id: str) -> dict[str, Any] | None:
        found = self.get(f"{realm}/clients", clientId=client_id) or []
        return found[0] if found else None

    def allow_password_grant(self, realm: str, client_id: str) -> bool:
        """Turn on direct access grants for one client (bench realms only); True if changed."""
        client = self.client(realm, client_id)
        if client is None:
            raise RuntimeError(f"client {client_id!r} is not in realm {realm!r}")
        if client.get("directAccessGrantsEnabled"):
            return False
        client["directAccessGrantsEnabled"] = True
        self.request("PUT", f"{realm}/clients/{client['id']}", json=client)
        return True
