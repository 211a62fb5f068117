"""OIDC Back-Channel Logout 1.0: when a Keycloak session ends, the portal sessions it began end.

Keycloak posts a logout token (``application/x-www-form-urlencoded``, field ``logout_token``) to
the portal client's ``backchannel.logout.url`` whenever a user's session ends there: sign-out
elsewhere, an admin's logout, the sync worker's logout of a revoked person, an expired SSO
session. The token is verified as the specification's section 2.6 asks: signature against the
realm's JWKS (our algorithms only), ``iss``, ``aud``, ``iat``, the back-channel ``events``
member, a ``sid`` or ``sub``, no ``nonce``; its ``jti`` is accepted once. The portal sessions
indexed under that ``sid`` (or, without one, that ``sub``) are deleted from Redis.

The endpoint is CSRF-exempt (the caller is Keycloak, not a browser; the signed token is the
credential) and answers 200 on success, 400 with ``invalid_request`` otherwise, never cached.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify, request
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from approval_portal.auth import SIGNING_ALGORITHMS
from approval_portal.security import csrf
from approval_portal.sessions import PortalSessionInterface
from iacs.settings import Settings

blueprint = Blueprint("backchannel", __name__)
csrf.exempt(blueprint)

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
MAX_TOKEN_BYTES = 8192
IAT_LEEWAY_SECONDS = 60
MAX_TOKEN_AGE_SECONDS = 600
"""A logout token issued longer ago than this is refused (and its ``jti`` is remembered this
long, so a replay within the window is refused too)."""
JTI_PREFIX = "iacs:logout-jti:"


class InvalidLogoutToken(Exception):
    """The logout token is not one the realm issued to the portal for a back-channel logout."""


def verify_logout_token(
    raw: str, *, issuer: str, audience: str, jwks: Any, now: float | None = None
) -> dict[str, Any]:
    """The claims of a valid logout token, or ``InvalidLogoutToken`` saying why not."""
    if not raw or len(raw) > MAX_TOKEN_BYTES or raw.count(".") != 2:
        raise InvalidLogoutToken("the logout token is not a signed JWT")
    algorithms = SIGNING_ALGORITHMS
    try:
        try:
            token = jwt.decode(raw, KeySet.import_key_set(jwks(False)), algorithms=algorithms)
        except InvalidKeyIdError:
            token = jwt.decode(raw, KeySet.import_key_set(jwks(True)), algorithms=algorithms)
    except JoseError as exc:
        raise InvalidLogoutToken("the logout token's signature is not valid") from exc
    except (ValueError, TypeError) as exc:
        raise InvalidLogoutToken("the logout token is malformed") from exc
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        leeway=IAT_LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        iat={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise InvalidLogoutToken(f"the logout token was refused ({exc.description})") from exc
    now = time.time() if now is None else now
    iat = claims["iat"]
    if not isinstance(iat, int | float) or now - iat > MAX_TOKEN_AGE_SECONDS:
        raise InvalidLogoutToken("the logout token is too old")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise InvalidLogoutToken("the logout token carries no back-channel logout event")
    if "nonce" in claims:
        raise InvalidLogoutToken("a logout token never carries a nonce")
    sid, sub = claims.get("sid"), claims.get("sub")
    if not (isinstance(sid, str) and sid) and not (isinstance(sub, str) and sub):
        raise InvalidLogoutToken("the logout token names neither a session (sid) nor a subject")
    if not isinstance(claims["jti"], str):
        raise InvalidLogoutToken("the logout token's jti is not a string")
    return claims


def _refused(message: str) -> Response:
    response = jsonify({"error": "invalid_request", "error_description": message})
    response.status_code = 400
    return response


@blueprint.post("/auth/backchannel-logout")
def backchannel_logout() -> Response:
    """Verify Keycloak's logout token and end the portal sessions it names."""
    settings: Settings = current_app.config["IACS_SETTINGS"]
    raw = request.form.get("logout_token", "")
    try:
        claims = verify_logout_token(
            raw,
            issuer=settings.keycloak.issuer,
            audience=settings.keycloak.portal_client_id,
            jwks=current_app.extensions["iacs.realm_keys"],
        )
    except InvalidLogoutToken as exc:
        current_app.logger.warning("back-channel logout refused: %s", exc)
        return _refused(str(exc))
    interface: PortalSessionInterface = current_app.session_interface  # type: ignore[assignment]
    store: redis.Redis = interface.client
    if not store.set(JTI_PREFIX + claims["jti"], b"1", nx=True, ex=MAX_TOKEN_AGE_SECONDS * 2):
        return _refused("this logout token was already used")
    sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
    sub = claims.get("sub") if isinstance(claims.get("sub"), str) else None
    ended = interface.end_keycloak_session(sid, sub)
    current_app.logger.info("back-channel logout: %d portal session(s) ended", ended)
    return Response(status=200)
