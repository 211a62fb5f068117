"""A sample integrated application: PQRI feedback reports or PS&R, signing people in through IACS.

One codebase, configured per OIDC client id (``APPLICATIONS``). What to copy from it:

1. **Sign-in**: the authorization code flow with PKCE (S256) through authlib's Flask client.
   authlib keeps ``state``, ``nonce`` and the code verifier in the session and checks them on
   the callback; the ID token is verified against the realm's JWKS (signature) and for ``iss``,
   ``aud`` (this client), ``exp`` and ``nonce``.
2. **Authorization**: a page names the application role it needs; the role must be in the
   token's ``app_roles`` (this application's roles only). For *which data*, only the
   affiliations whose ``app_roles`` hold that role count (``IacsClaims.organizations_for``).
3. **Freshness**: the claims are trusted for as long as the access token issued with them
   (5 minutes in the realm). Then the app refreshes: new, verified claims (a role granted
   since shows up), or Keycloak refuses because the person's session was ended when a role
   was revoked (LC-1), and the app signs the person out.
4. **Sign-out at once**: Keycloak calls ``/oidc/backchannel-logout`` (OIDC Back-Channel
   Logout) when a person's Keycloak session ends, e.g. when the sync worker logs out a person
   whose role was revoked; the app verifies the logout token (``logout.py``) and ends its
   sessions for that Keycloak session or person: their next request is refused.
5. **Browser hygiene**: the session cookie holds only a random session id (tokens stay on the
   server), is Secure, HttpOnly and SameSite=Lax; every form carries a CSRF token; a refused
   page is a 403 that names the missing role.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import (
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFProtect
from joserfc.errors import JoseError

from .claims import IacsClaims, UnsupportedClaims
from .logout import BACKCHANNEL_LOGOUT_PATH, LogoutTokenRefused, LogoutTokenVerifier

log = logging.getLogger("examples.pqri_psr_app")

CALLBACK_PATH = "/oidc/callback"


# ---------------------------------------------------------------- what each application offers


@dataclass(frozen=True)
class Page:
    """A page of the application and the application role it needs."""

    endpoint: str
    path: str
    title: str
    role: str
    summary: str


@dataclass(frozen=True)
class Application:
    client_id: str
    name: str
    pages: tuple[Page, ...]


APPLICATIONS = {
    app.client_id: app
    for app in [
        Application(
            "pqri-feedback-reports",
            "PQRI feedback reports",
            (
                Page(
                    "reports",
                    "/reports",
                    "Feedback reports",
                    "report-viewer",
                    "Quality-reporting feedback for the organizations you work for.",
                ),
            ),
        ),
        Application(
            "psr",
            "PS&R",
            (
                Page(
                    "reports",
                    "/reports",
                    "Summary reports",
                    "report-viewer",
                    "Provider Statistical and Reimbursement summary reports.",
                ),
                Page(
                    "request_report",
                    "/report-requests",
                    "Request a report",
                    "report-requester",
                    "Ask for a PS&R report to be produced for one of your organizations.",
                ),
            ),
        ),
    ]
}


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class AppConfig:
    """Everything the app needs to reach Keycloak as its client."""

    client_id: str
    client_secret: str = field(repr=False)
    keycloak_url: str
    """Where this server reaches Keycloak (token endpoint, JWKS)."""
    realm: str
    issuer: str
    """The ``iss`` every ID token must carry (Keycloak's public URL + realm)."""
    redirect_uri: str
    """This app's callback as registered on the client in the realm (``.../oidc/callback``)."""
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    """Signs the session cookie and CSRF tokens; random per process unless given."""

    @property
    def metadata_url(self) -> str:
        base = f"{self.keycloak_url.rstrip('/')}/realms/{self.realm}"
        return f"{base}/.well-known/openid-configuration"

    @classmethod
    def from_settings(
        cls, settings: Any, client_id: str, redirect_uri: str, secret_key: str | None = None
    ) -> AppConfig:
        """From the IACS settings (``IACS_KEYCLOAK__*``): issuer, realm and the client secret."""
        keycloak = settings.keycloak
        secret = keycloak.application_client_secrets.get(client_id)
        if secret is None:
            raise SystemExit(
                f"no client secret for {client_id}: set IACS_KEYCLOAK__APPLICATION_CLIENT_SECRETS "
                f'to a JSON object such as {{"{client_id}": "..."}}'
            )
        return cls(
            client_id=client_id,
            client_secret=secret.get_secret_value(),
            keycloak_url=keycloak.url,
            realm=keycloak.realm,
            issuer=keycloak.issuer,
            redirect_uri=redirect_uri,
            **({"secret_key": secret_key} if secret_key else {}),
        )


# ---------------------------------------------------------------- server-side sign-ins


@dataclass
class SignedIn:
    """One person's sign-in: the verified claims and the tokens to renew them."""

    claims: IacsClaims
    id_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    claims_expire_at: float
    """When the access token issued with these claims expires: refresh after that."""
    subject: str = ""
    """The ID token's ``sub``: a back-channel logout naming it ends this sign-in."""
    keycloak_session: str | None = None
    """The ID token's ``sid`` (Keycloak's session): a back-channel logout naming it ends this."""


class SignInStore:
    """Sign-ins by random session id, in memory: tokens never travel in the cookie.

    A real deployment with several processes keeps them in a shared store (Redis, a database)
    that forgets an entry when its SSO session could no longer be alive (10 hours here).
    """

    def __init__(self) -> None:
        self._items: dict[str, SignedIn] = {}
        self.lock = threading.Lock()
        """Held while refreshing, so two requests never spend the same refresh token."""
        self._items_lock = threading.Lock()
        """Held for each read-modify-write of ``_items`` (never across a call to Keycloak)."""

    def get(self, sid: str | None) -> SignedIn | None:
        return self._items.get(sid) if sid else None

    def put(self, sid: str, signed_in: SignedIn) -> None:
        self._items[sid] = signed_in

    def replace(self, sid: str, old: SignedIn, new: SignedIn) -> bool:
        """Put ``new`` only if ``old`` is still there: a refresh never revives a sign-in that a
        back-channel logout ended while the refresh was on its way."""
        with self._items_lock:
            if self._items.get(sid) is not old:
                return False
            self._items[sid] = new
            return True

    def drop(self, sid: str | None) -> SignedIn | None:
        return self._items.pop(sid, None) if sid else None

    def end(self, *, sub: str | None, sid: str | None) -> int:
        """End the sign-ins of Keycloak session ``sid`` (of person ``sub`` if both are given),
        or every sign-in of ``sub`` when no ``sid`` is given; returns how many ended."""
        with self._items_lock:
            ended = [
                key
                for key, item in self._items.items()
                if (sid is None or item.keycloak_session == sid)
                and (sub is None or item.subject == sub)
            ]
            for key in ended:
                del self._items[key]
        return len(ended)


class SignInRefused(Exception):
    """Keycloak refused to renew the sign-in (session ended: signed out, revoked, expired)."""


# ---------------------------------------------------------------- the app


def create_app(config: AppConfig, *, store: SignInStore | None = None) -> Flask:
    """The sample application for ``config.client_id`` (a key of ``APPLICATIONS``)."""
    application = APPLICATIONS[config.client_id]
    if urlsplit(config.redirect_uri).path != CALLBACK_PATH:
        raise ValueError(f"the redirect URI must end in {CALLBACK_PATH}: {config.redirect_uri}")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        # Both sample apps run on 127.0.0.1 and cookies do not care about ports: one name each.
        SESSION_COOKIE_NAME=f"{config.client_id}-session",
        SESSION_COOKIE_SECURE=True,  # browsers accept Secure cookies from http://127.0.0.1 too
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # sent on Keycloak's top-level redirect to the callback
        MAX_CONTENT_LENGTH=16 * 1024,
    )
    app.extensions["example.config"] = config
    app.extensions["example.application"] = application
    app.extensions["example.store"] = store or SignInStore()
    csrf = CSRFProtect(app)
    oauth = OAuth(app)
    app.extensions["example.oidc"] = oauth.register(
        name="iacs",
        client_id=config.client_id,
        client_secret=config.client_secret,
        server_metadata_url=config.metadata_url,
        client_kwargs={
            "scope": "openid",
            "code_challenge_method": "S256",  # PKCE; the realm requires it of this client
            "token_endpoint_auth_method": "client_secret_basic",
            "timeout": 15,
        },
    )

    app.add_url_rule("/", "home", home)
    app.add_url_rule("/login", "login", login)
    app.add_url_rule(CALLBACK_PATH, "callback", callback)
    app.add_url_rule("/logout", "logout", logout, methods=["POST"])
    app.add_url_rule("/healthz", "healthz", lambda: {"status": "ok"})
    # Keycloak calls it server to server: no browser, no cookie, so no CSRF token; the logout
    # token's signature is what authenticates the call.
    app.add_url_rule(
        BACKCHANNEL_LOGOUT_PATH,
        "backchannel_logout",
        csrf.exempt(backchannel_logout),
        methods=["POST"],
    )
    app.extensions["example.logout_tokens"] = LogoutTokenVerifier(
        config.issuer, config.client_id, lambda force: _oidc().fetch_jwk_set(force=force)
    )
    for page in application.pages:
        view = functools.partial(show_page, page)
        methods = ["GET", "POST"] if page.endpoint == "request_report" else ["GET"]
        app.add_url_rule(page.path, page.endpoint, requires(page.role)(view), methods=methods)

    app.before_request(load_sign_in)
    app.after_request(security_headers)
    app.context_processor(lambda: {"application": application, "person": g.get("person")})
    return app


def _oidc():
    return current_app.extensions["example.oidc"]


def _config() -> AppConfig:
    return current_app.extensions["example.config"]


def _store() -> SignInStore:
    return current_app.extensions["example.store"]


def _id_token_checks() -> dict[str, Any]:
    """What the ID token must say, besides its signature (JWKS) and nonce (checked by authlib)."""
    config = _config()
    return {
        "iss": {"essential": True, "value": config.issuer},
        "aud": {"essential": True, "value": config.client_id},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }


# ---------------------------------------------------------------- sign-in, refresh, sign-out


def login():
    """Start the code flow; authlib puts state, nonce and the PKCE verifier in the session."""
    session["after_login"] = _same_site_path(request.args.get("next")) or url_for("home")
    return _oidc().authorize_redirect(_config().redirect_uri)


def callback():
    """Keycloak sends the browser back here after sign-in (with ``code``) or sign-out."""
    if "code" not in request.args and "error" not in request.args:
        return _signed_out()
    try:
        token = _oidc().authorize_access_token(claims_options=_id_token_checks(), leeway=30)
        verified = token.get("userinfo")  # the ID token's claims, verified
        if not verified:
            raise ValueError("no ID token")
        claims = IacsClaims.from_token(verified)
    except UnsupportedClaims as exc:
        return _page("error.html", 403, title="Sign-in refused", message=str(exc))
    except (OAuthError, JoseError, ValueError, KeyError) as exc:
        log.warning("sign-in refused: %s", exc)
        return _page(
            "error.html",
            400,
            title="Sign-in failed",
            message="The sign-in failed or was interrupted. Please sign in again.",
        )
    after = session.get("after_login") or url_for("home")
    session.clear()  # a fresh session for the signed-in person (no session fixation)
    sid = secrets.token_urlsafe(32)
    _store().put(sid, _signed_in(token, claims, verified))
    session["sid"] = sid
    return redirect(after)


def _signed_in(token: dict[str, Any], claims: IacsClaims, verified: Any) -> SignedIn:
    return SignedIn(
        claims=claims,
        id_token=token["id_token"],
        refresh_token=token.get("refresh_token"),
        claims_expire_at=float(token.get("expires_at") or time.time() + token["expires_in"]),
        subject=str(verified.get("sub") or ""),
        keycloak_session=verified.get("sid"),
    )


def load_sign_in() -> None:
    """Before every request: who is signed in, with claims no older than the access token."""
    g.person = None
    sid = session.get("sid")
    store = _store()
    signed_in = store.get(sid)
    if signed_in is None:
        return
    if time.time() >= signed_in.claims_expire_at:
        with store.lock:
            signed_in = store.get(sid)  # another request may have refreshed meanwhile
            if signed_in is not None and time.time() >= signed_in.claims_expire_at:
                try:
                    renewed = refresh(signed_in)
                    if not store.replace(sid, signed_in, renewed):
                        raise SignInRefused("ended by a back-channel logout meanwhile")
                    signed_in = renewed
                except SignInRefused as exc:
                    log.info("sign-in of %s ended: %s", signed_in.claims.username, exc)
                    store.drop(sid)
                    session.clear()
                    flash("Your sign-in has ended (a role may have been revoked). Sign in again.")
                    return
    g.person = signed_in


def refresh(signed_in: SignedIn) -> SignedIn:
    """New, verified claims from Keycloak, or ``SignInRefused`` once its session is over.

    The realm rotates refresh tokens (each is good for one use) and the sync worker ends a
    person's Keycloak sessions when one of their roles is revoked, so a revoked person's refresh
    is refused here within one access-token lifetime.
    """
    if not signed_in.refresh_token:
        raise SignInRefused("no refresh token")
    oidc = _oidc()
    try:
        token = oidc.fetch_access_token(
            grant_type="refresh_token", refresh_token=signed_in.refresh_token
        )
        verified = oidc.parse_id_token(token, nonce=None, claims_options=_id_token_checks())
        if not verified:
            raise SignInRefused("Keycloak sent no ID token")
        claims = IacsClaims.from_token(verified)
    except OAuthError as exc:  # invalid_grant: session ended, token reused or expired
        raise SignInRefused(exc.error or str(exc)) from exc
    except (JoseError, ValueError, KeyError, UnsupportedClaims) as exc:
        raise SignInRefused(f"the refreshed ID token was refused: {exc}") from exc
    if claims.username != signed_in.claims.username:
        raise SignInRefused("the refreshed ID token names someone else")
    if verified.get("sid") != signed_in.keycloak_session:
        raise SignInRefused("the refreshed ID token is of another Keycloak session")
    return _signed_in(token, claims, verified)


def logout():
    """End this app's session, then Keycloak's (RP-initiated logout, back to the callback)."""
    signed_in = _store().drop(session.get("sid"))
    session.clear()
    if signed_in is None:
        return redirect(url_for("home"))
    return _oidc().logout_redirect(
        post_logout_redirect_uri=_config().redirect_uri, id_token_hint=signed_in.id_token
    )


def backchannel_logout():
    """Keycloak ends a session: verify its logout token, then end our sign-ins for it.

    200 once done (also when no sign-in of ours matched: the person may have signed out here
    already); 400 with an OAuth-style error for a token refused, and then nothing ends.
    """
    value = request.form.get("logout_token", "")
    verifier: LogoutTokenVerifier = current_app.extensions["example.logout_tokens"]
    try:
        if not value:
            raise LogoutTokenRefused("no logout_token")
        logout_request = verifier.verify(value)
    except LogoutTokenRefused as exc:
        log.warning("back-channel logout refused: %s", exc)
        return {"error": "invalid_request", "error_description": "logout token refused"}, 400
    ended = _store().end(sub=logout_request.sub, sid=logout_request.sid)
    log.info("back-channel logout: %d sign-in(s) ended", ended, extra={"sid": logout_request.sid})
    return "", 200


def _signed_out():
    try:
        _oidc().validate_logout_response()  # the state we sent with the sign-out
    except OAuthError:
        abort(400, description="unexpected call of the sign-in callback")
    flash("You are signed out.")
    return redirect(url_for("home"))


def _same_site_path(value: str | None) -> str | None:
    """A relative path on this site to return to after sign-in (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc and len(value) < 512 else None


# ---------------------------------------------------------------- authorization and pages


def requires(role: str) -> Callable[[Callable], Callable]:
    """The view needs this application role in the token's ``app_roles``; else a 403 naming it."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.person is None:
                return redirect(url_for("login", next=request.path))
            if not g.person.claims.has(role):
                return _page("forbidden.html", 403, title="Access refused", role=role)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def home():
    return _page("home.html", 200, title=current_app.extensions["example.application"].name)


def show_page(page: Page):
    claims: IacsClaims = g.person.claims
    organizations = claims.organizations_for(page.role)
    if request.method == "POST":  # PS&R: request a report (the CSRF token was checked)
        organization = request.form.get("organization", "")
        if organization not in organizations:
            return _page("forbidden.html", 403, title="Access refused", role=page.role)
        flash(f"Your report for {organization} was requested.")
        return redirect(url_for(page.endpoint))
    return _page(
        "page.html",
        200,
        title=page.title,
        page=page,
        organizations=organizations,
        granting=claims.granting(page.role),
    )


def _page(template: str, status: int, **context: Any):
    return render_template(template, **context), status


def security_headers(response):
    config = _config()
    keycloak = urlsplit(config.issuer)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; "
        # the sign-out form is answered with a redirect to Keycloak's end-session endpoint
        f"form-action 'self' {keycloak.scheme}://{keycloak.netloc}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"  # every page is personal
    return response
