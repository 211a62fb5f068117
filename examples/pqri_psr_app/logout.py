"""OIDC Back-Channel Logout 1.0: Keycloak tells the application at once that a session ended.

When the sync worker logs a person out (a role revoked, an organization or group no longer
active), Keycloak POSTs a *logout token* to the back-channel logout URL of every client the
person signed in to (``backchannel.logout.url`` in ``keycloak_config/realm.json``). The
application verifies it and ends its own sessions for that Keycloak session (``sid``) or person
(``sub``), so the person's next request is refused instead of at the next token refresh.

Anyone who can reach the URL can POST to it, so the token is checked in full before anything
ends (OIDC Back-Channel Logout 1.0, section 2.6):

- the signature, by a key of the realm's JWKS (joserfc; an unsigned or HMAC token is refused:
  only the realm's asymmetric algorithms are accepted), fetched again once for an unknown key;
- ``iss`` exactly the issuer, ``aud`` this client, ``iat`` present and recent, ``exp`` if given;
- ``events`` holds the back-channel logout event (a JSON object);
- ``sub`` or ``sid`` (or both), and no ``nonce`` (so an ID token cannot pass for a logout token);
- ``jti`` seen only once while the token could still be accepted (a replayed token ends nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

BACKCHANNEL_LOGOUT_PATH = "/oidc/backchannel-logout"
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
SIGNING_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
"""What the realm may sign with: asymmetric only (``none`` and ``HS*`` are refused)."""
MAX_AGE = 120
"""A logout token issued longer ago than this (seconds) is refused: Keycloak sends it at once."""
LEEWAY = 30
"""Clock skew tolerated between Keycloak and the application (seconds)."""


class LogoutTokenRefused(Exception):
    """The logout token is not one Keycloak issued to this client just now: nothing ends."""


@dataclass(frozen=True)
class LogoutRequest:
    """Whose sessions a verified logout token ends."""

    sub: str | None
    sid: str | None
    jti: str


class LogoutTokenVerifier:
    """Verifies logout tokens for one client of one realm, and remembers their ``jti``.

    ``jwks`` returns the realm's JSON Web Key Set; called with ``True`` it fetches it again
    (a key Keycloak rotated in since the last fetch). The seen ``jti`` are kept in memory only
    as long as their token could pass the age check; several processes behind one URL would
    keep them in a shared store (Redis ``SET NX EX``).
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        jwks: Callable[[bool], dict[str, Any]],
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._jwks = jwks
        self._now = now
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, value: str) -> LogoutRequest:
        """The verified request, or ``LogoutTokenRefused`` saying why (never half-checked)."""
        token = self._decode(value)
        claims = token.claims
        now = int(self._now())
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=LEEWAY,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            iat={"essential": True},
            jti={"essential": True},
            events={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise LogoutTokenRefused(f"claims: {exc}") from exc
        if now - int(claims["iat"]) > MAX_AGE:
            raise LogoutTokenRefused("issued too long ago")
        events = claims["events"]
        if not isinstance(events, dict) or not isinstance(
            events.get(BACKCHANNEL_LOGOUT_EVENT), dict
        ):
            raise LogoutTokenRefused("no back-channel logout event")
        if "nonce" in claims:
            raise LogoutTokenRefused("a logout token carries no nonce")
        sub, sid = claims.get("sub"), claims.get("sid")
        if not (isinstance(sub, str) and sub) and not (isinstance(sid, str) and sid):
            raise LogoutTokenRefused("neither sub nor sid")
        for name, claim in (("sub", sub), ("sid", sid)):
            if claim is not None and not isinstance(claim, str):
                raise LogoutTokenRefused(f"{name} is not a string")
        self._first_use(str(claims["jti"]), int(claims["iat"]), now)
        return LogoutRequest(sub=sub or None, sid=sid or None, jti=str(claims["jti"]))

    def _decode(self, value: str) -> jwt.Token:
        """Signature check against the realm's keys (fetched again for a key not yet known)."""
        try:
            kid = jws.extract_compact(value.encode()).headers().get("kid")
            jwks = self._jwks(False)
            if kid not in {key.get("kid") for key in jwks.get("keys", ())}:
                jwks = self._jwks(True)  # Keycloak may have rotated its keys since
            return jwt.decode(value, KeySet.import_key_set(jwks), algorithms=SIGNING_ALGORITHMS)
        except (JoseError, ValueError, TypeError) as exc:
            raise LogoutTokenRefused(f"signature: {exc}") from exc

    def _first_use(self, jti: str, iat: int, now: int) -> None:
        """Record ``jti``; refuse it if already recorded. Forget those too old to pass anyway."""
        with self._lock:
            for old, until in list(self._seen.items()):
                if until < now:
                    del self._seen[old]
            if jti in self._seen:
                raise LogoutTokenRefused("replayed (jti already used)")
            self._seen[jti] = iat + MAX_AGE + 2 * LEEWAY
