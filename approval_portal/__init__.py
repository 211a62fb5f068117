"""The approval portal: HTML pages and a JSON API over ``iacs.service``, signed in through Keycloak.

``create_app`` assembles the application from small setup functions; every collaborator that
talks to a server (the service over the directory, the OIDC client, the bearer-token verifier)
can be injected, so tests pass in ones bound to their own slapd subtree and Keycloak realm.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from iacs.settings import Settings, load_settings

MAX_BODY_BYTES = 64 * 1024
"""Every request body is refused beyond this size (413): no form or API call needs more."""


def create_app(
    settings: Settings | None = None,
    service: Any = None,
    oauth_client: Any = None,
    token_verifier: Any = None,
    views: Any = None,
) -> Flask:
    """Build the portal; anything not injected is built from ``settings``."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config["IACS_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["SECRET_KEY"] = settings.portal.secret_key.get_secret_value()
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    _setup_service(app, settings, service, views)
    _setup_security(app, settings)
    _setup_auth(app, settings, oauth_client, token_verifier)
    _setup_routes(app)
    return app


def _setup_service(app: Flask, settings: Settings, service: Any, views: Any) -> None:
    from iacs.service.views import ViewService

    if service is None:
        from iacs.wiring import build_service

        service = build_service(settings, recover=True)
    app.extensions["iacs.service"] = service
    app.extensions["iacs.views"] = views or ViewService(service)


def _setup_security(app: Flask, settings: Settings) -> None:
    from approval_portal import security

    security.init_app(app, settings)


def _setup_auth(app: Flask, settings: Settings, oauth_client: Any, token_verifier: Any) -> None:
    from approval_portal import auth

    auth.init_app(app, settings, oauth_client, token_verifier)


def _setup_routes(app: Flask) -> None:
    from approval_portal import api, errors, pages

    errors.init_app(app)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(api.blueprint, url_prefix="/api/v1")
