"""The approval portal: HTML pages and a JSON API over ``iacs.service``, signed in through Keycloak.

``create_app`` assembles the application from small setup functions; every collaborator that
talks to a server (the service over the directory, the OIDC client, the bearer-token verifier)
can be injected, so tests pass in ones bound to their own slapd subtree and Keycloak realm. The
service is always passed in: the composition root builds it (``iacs.wiring.build_portal``).
"""

from __future__ import annotations

import json
from typing import Any

import redis
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix

from approval_portal import api, auth, backchannel, errors, limits, pages, security, sessions
from approval_portal.sessions import StoreNotConfigured
from iacs.service.views import ViewService
from iacs.settings import Settings, load_settings, require_secrets

MAX_BODY_BYTES = 64 * 1024
"""Every request body is refused beyond this size (413): no form or API call needs more."""
MAX_JSON_DEPTH = 16
"""No API body nests deeper than a few levels; deeper ones are refused (400) before any use."""


def create_app(
    settings: Settings | None = None,
    service: Any = None,
    oauth_client: Any = None,
    token_verifier: Any = None,
    views: Any = None,
    session_store: redis.Redis | None = None,
) -> Flask:
    """Build the portal; anything not injected is built from ``settings``.

    Fails at once, naming the setting, when a secret the portal needs is unset outside
    development or when no session store is configured (never a per-process fallback).
    """
    settings = settings or load_settings()
    check_settings(settings, store_given=session_store is not None)
    app = Flask(__name__)
    app.json = BoundedJSONProvider(app)
    app.config["IACS_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["SECRET_KEY"] = settings.portal.secret_key.get_secret_value()
    app.json.sort_keys = False
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    if settings.portal.trusted_proxies:
        hops = settings.portal.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )

    _setup_service(app, settings, service, views)
    _setup_security(app, settings)
    _setup_sessions(app, settings, session_store)
    _setup_auth(app, settings, oauth_client, token_verifier)
    _setup_routes(app)
    return app


def check_settings(settings: Settings, *, store_given: bool = False) -> None:
    """The portal's own secrets and its session store, read now so a bad start fails at once."""
    portal, keycloak, ldap = settings.portal, settings.keycloak, settings.ldap
    require_secrets(portal.secret_key, keycloak.portal_client_secret, ldap.portal_bind_password)
    if portal.session_store_url is None and not store_given:
        raise StoreNotConfigured(
            "IACS_PORTAL__SESSION_STORE_URL must be set (redis://:<password>@host:port/0): the "
            "portal keeps its sessions in the Redis every portal process shares"
        )


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing bodies nested deeper than ``MAX_JSON_DEPTH`` as invalid JSON.

    Python's parser recurses: 20,000 brackets (well under the size limit) raised RecursionError,
    a 500. A ValueError here is what Flask turns into 400 (or ``None`` with ``silent=True``).
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        depth = deepest = 0
        in_string = escaped = False
        for char in text:  # brackets outside strings; cheap next to parsing itself
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
                deepest = max(deepest, depth)
                if deepest > MAX_JSON_DEPTH:
                    raise ValueError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
            elif char in "]}":
                depth -= 1
        return json.loads(s, **kwargs)


def _setup_service(app: Flask, settings: Settings, service: Any, views: Any) -> None:
    if service is None:
        raise TypeError("create_app needs a service: iacs.wiring.build_portal builds one")
    app.extensions["iacs.service"] = service
    app.extensions["iacs.views"] = views or ViewService(service)


def _setup_security(app: Flask, settings: Settings) -> None:
    security.init_app(app, settings)


def _setup_sessions(app: Flask, settings: Settings, session_store: redis.Redis | None) -> None:
    client = sessions.init_app(app, settings, session_store)
    limits.init_app(app, settings, client)


def _setup_auth(app: Flask, settings: Settings, oauth_client: Any, token_verifier: Any) -> None:
    auth.init_app(app, settings, oauth_client, token_verifier)


def _setup_routes(app: Flask) -> None:
    errors.init_app(app)
    app.register_blueprint(backchannel.blueprint)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(api.blueprint, url_prefix="/api/v1")
