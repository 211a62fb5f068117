"""Browser-facing protections: the session cookie, CSRF on every form, and security headers.

The session cookie (a random id; the session itself is in Redis, see ``approval_portal.sessions``)
is Secure, HttpOnly and SameSite=Lax (``session_cookie_secure`` turns Secure
off only for a local http stack). Every state-changing request carries a CSRF token; the JSON API
exempts calls authenticated by a bearer token (no ambient credential to ride on) and enforces it
for calls riding on the session cookie (see ``approval_portal.api``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFProtect

from iacs.settings import Settings

csrf = CSRFProtect()


def init_app(app: Flask, settings: Settings) -> None:
    app.config.update(
        SESSION_COOKIE_NAME="iacs_portal",
        SESSION_COOKIE_SECURE=settings.portal.session_cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # The token lives in the server-side session; it cannot outlive it (sessions.py).
        WTF_CSRF_TIME_LIMIT=settings.portal.session_lifetime_seconds,
        WTF_CSRF_SSL_STRICT=True,
    )
    csrf.init_app(app)
    keycloak = urlsplit(settings.keycloak.public_url or settings.keycloak.url)
    keycloak_origin = f"{keycloak.scheme}://{keycloak.netloc}"
    policy = "; ".join(
        [
            "default-src 'self'",
            "base-uri 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            # The sign-out form redirects to Keycloak's end-session endpoint.
            f"form-action 'self' {keycloak_origin}",
        ]
    )

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if settings.portal.session_cookie_secure:
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if not request.path.startswith("/static/"):
            # Authenticated pages and API answers are personal: never stored by any cache.
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response
