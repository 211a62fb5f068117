"""Sign-in through Keycloak, and who is asking: the browser session or a bearer token.

Browsers sign in with the authorization code flow and PKCE (S256) through authlib's Flask client:
authlib keeps ``state``, ``nonce`` and the code verifier in the session and checks them on the
callback; the ID token is verified against the realm's JWKS (signature, ``iss``, ``aud``, ``exp``,
``nonce``). The session then holds only the username. API clients may instead send
``Authorization: Bearer <access token>`` issued by the realm to the portal client; it is verified
the same way (plus ``typ: Bearer``). After sign-in the portal goes back only to a same-origin
relative path (no open redirect).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    request,
    session,
    url_for,
)
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from approval_portal.limits import refused_too_often
from approval_portal.mfa import SecondFactorRequired, require_mfa
from approval_portal.sessions import SIGNED_IN_AT, PortalSessionInterface
from iacs.settings import Settings

blueprint = Blueprint("auth", __name__, url_prefix="/auth")

SIGNING_ALGORITHMS = ["RS256", "PS256", "ES256"]
"""The asymmetric algorithms the realm signs with; never the OP's list (no ``none``, no HS*)."""
JWKS_REFETCH_SECONDS = 30.0
"""At most one forced JWKS fetch per this many seconds per process, however many unknown
``kid`` values arrive: a rotated key is picked up within this time, a flood costs nothing."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


class InvalidToken(Exception):
    """A bearer token that is malformed, badly signed, expired or meant for someone else."""


def init_app(
    app: Flask, settings: Settings, oauth_client: Any = None, token_verifier: Any = None
) -> None:
    if oauth_client is None:
        oauth_client = build_oauth_client(app, settings)
    app.extensions["iacs.oauth"] = oauth_client
    keys = RealmKeys(lambda force: oauth_client.fetch_jwk_set(force=force))
    app.extensions["iacs.realm_keys"] = keys
    if token_verifier is None:
        token_verifier = TokenVerifier(
            issuer=settings.keycloak.issuer,
            audience=settings.keycloak.portal_client_id,
            jwks=keys,
            second_factor_required=settings.portal.second_factor_required,
        )
    app.extensions["iacs.tokens"] = token_verifier
    app.extensions["iacs.second_factor_required"] = settings.portal.second_factor_required
    app.register_blueprint(blueprint)


class RealmKeys:
    """The realm's JWKS, refetched on an unknown ``kid`` at most once per ``min_interval``."""

    def __init__(
        self,
        fetch: Callable[[bool], dict],
        min_interval: float = JWKS_REFETCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.min_interval = min_interval
        self.clock = clock
        self._last_forced: float | None = None
        self._lock = threading.Lock()

    def __call__(self, force: bool = False) -> dict:
        if force:
            with self._lock:
                now = self.clock()
                last = self._last_forced
                recent = last is not None and now - last < self.min_interval
                if not recent:
                    self._last_forced = now
            if recent:
                force = False  # the cached set again: the unknown kid stays unknown
        return self.fetch(force)


def build_oauth_client(app: Flask, settings: Settings) -> Any:
    """authlib's client for the portal's confidential OIDC client in the realm."""
    keycloak = settings.keycloak
    oauth = OAuth(app)
    return oauth.register(
        name="keycloak",
        client_id=keycloak.portal_client_id,
        client_secret=keycloak.portal_client_secret.get_secret_value(),
        server_metadata_url=(
            f"{keycloak.url.rstrip('/')}/realms/{keycloak.realm}/.well-known/openid-configuration"
        ),
        client_kwargs={
            "scope": "openid profile email",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "timeout": 10,
        },
    )


def pin_signing_algorithms(client: Any) -> None:
    """Make authlib verify the ID token with our algorithms, not the ones the OP advertises."""
    metadata = client.load_server_metadata()
    metadata["id_token_signing_alg_values_supported"] = list(SIGNING_ALGORITHMS)


class TokenVerifier:
    """Verifies access tokens the realm issued to the portal client, against the realm's JWKS."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: Callable[[bool], dict],
        leeway: int = 30,
        second_factor_required: bool = True,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.leeway = leeway
        self.second_factor_required = second_factor_required

    def verify(self, raw: str) -> dict[str, Any]:
        if not raw or len(raw) > 8192 or raw.count(".") != 2:
            raise InvalidToken("the bearer token is not a signed JWT")
        try:
            try:
                token = self._decode(raw, force=False)
            except InvalidKeyIdError:  # the realm may have rotated its keys
                token = self._decode(raw, force=True)
        except JoseError as exc:
            raise InvalidToken("the bearer token's signature is not valid") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidToken("the bearer token is malformed") from exc
        registry = jwt.JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            typ={"essential": True, "value": "Bearer"},
            preferred_username={"essential": True},
        )
        try:
            registry.validate(token.claims)
            if self.second_factor_required:
                require_mfa(token.claims)
        except JoseError as exc:
            raise InvalidToken(f"the bearer token was refused ({exc.error})") from exc
        except SecondFactorRequired as exc:
            raise InvalidToken(str(exc)) from exc
        return token.claims

    def _decode(self, raw: str, *, force: bool):
        keys = KeySet.import_key_set(self.jwks(force))  # type: ignore[arg-type]  # a JWKS dict
        return jwt.decode(raw, keys, algorithms=SIGNING_ALGORITHMS)


# ------------------------------------------------------------------ who is asking


def current_username() -> str | None:
    """The signed-in person for this request (set by ``load_user`` or the API's bearer check)."""
    return g.get("username")


def load_session_user() -> None:
    g.username = session.get("username")
    g.authenticated_by = "session" if g.username else None


def login_required(view: Callable) -> Callable:
    """Pages: send anyone not signed in to the sign-in, coming back here afterwards."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        load_session_user()
        if not g.username:
            target = request.full_path if request.query_string else request.path
            if request.method != "GET":
                target = "/"
            return redirect(url_for("auth.login", next=target))
        if (limited := refused_too_often(g.username)) is not None:
            return limited
        return view(*args, **kwargs)

    return wrapped


def safe_next(value: str | None) -> str | None:
    """A same-origin relative path to go back to after sign-in, or None when it is anything else."""
    if not value or len(value) > 512 or _CONTROL.search(value):
        return None
    if not value.startswith("/") or value.startswith("//"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


# ------------------------------------------------------------------ routes


@blueprint.get("/login")
def login():
    """Start the code flow (PKCE S256); authlib stores state, nonce and verifier in the session."""
    raw_next = request.args.get("next")
    target = safe_next(raw_next) if raw_next else "/"
    if target is None:
        abort(400, description="next must be a relative path on this site")
    session["after_login"] = target
    client = current_app.extensions["iacs.oauth"]
    settings: Settings = current_app.config["IACS_SETTINGS"]
    redirect_uri = settings.portal.public_url.rstrip("/") + url_for("auth.callback")
    if request.args.get("reauthenticate"):  # after a sign-in without the second factor it needs
        return client.authorize_redirect(redirect_uri, prompt="login")
    return client.authorize_redirect(redirect_uri)


@blueprint.get("/callback")
def callback():
    """Finish the code flow: state, PKCE and the ID token (signature, iss, aud, exp, nonce)."""
    client = current_app.extensions["iacs.oauth"]
    settings: Settings = current_app.config["IACS_SETTINGS"]
    try:
        pin_signing_algorithms(client)
        token = client.authorize_access_token(
            claims_options={
                "iss": {"essential": True, "value": settings.keycloak.issuer},
                "aud": {"essential": True, "value": settings.keycloak.portal_client_id},
                "exp": {"essential": True},
                "sub": {"essential": True},
            },
            leeway=30,
        )
    except (OAuthError, JoseError, ValueError, KeyError) as exc:
        current_app.logger.warning("sign-in refused: %s", exc)
        abort(400, description="sign-in failed or was interrupted; please sign in again")
    userinfo = token.get("userinfo") or {}
    username = userinfo.get("preferred_username")
    if not userinfo or not isinstance(username, str) or not username:
        abort(400, description="sign-in failed: the identity provider sent no verified ID token")
    try:
        if current_app.extensions["iacs.second_factor_required"]:
            require_mfa(userinfo)
    except SecondFactorRequired as exc:
        session.clear()
        abort(403, description=f"{exc} (/auth/login?reauthenticate=1)")
    target = safe_next(session.get("after_login")) or "/"
    start_session(username, userinfo)
    return redirect(target)


def start_session(username: str, id_token: dict[str, Any]) -> None:
    """A fresh server-side session for the signed-in person (a new id: no session fixation),
    indexed by the Keycloak session it came from so that a back-channel logout ends it."""
    interface: PortalSessionInterface = current_app.session_interface  # type: ignore[assignment]
    interface.regenerate(session)
    session.clear()
    session.permanent = True
    session["username"] = username
    session[SIGNED_IN_AT] = int(time.time())
    oidc_sid, oidc_sub = id_token.get("sid"), id_token.get("sub")
    interface.index(
        session.sid,  # type: ignore[attr-defined]
        oidc_sid if isinstance(oidc_sid, str) else None,
        oidc_sub if isinstance(oidc_sub, str) else None,
    )


@blueprint.post("/logout")
def logout():
    """End the portal session on the server, then Keycloak's (RP-initiated, back to the portal)."""
    interface: PortalSessionInterface = current_app.session_interface  # type: ignore[assignment]
    interface.end(session.sid)  # type: ignore[attr-defined]
    session.clear()
    settings: Settings = current_app.config["IACS_SETTINGS"]
    client = current_app.extensions["iacs.oauth"]
    try:
        end_session = client.load_server_metadata().get("end_session_endpoint")
    except Exception:  # Keycloak down: the portal session is gone anyway
        end_session = None
    home = settings.portal.public_url.rstrip("/") + "/"
    if not end_session:
        return redirect("/")
    query = urlencode(
        {"client_id": settings.keycloak.portal_client_id, "post_logout_redirect_uri": home}
    )
    return redirect(f"{end_session}?{query}")
