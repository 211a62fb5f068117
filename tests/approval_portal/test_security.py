"""Browser protections that need no server: cookie flags, headers, open redirects, body limits.

The app gets stand-ins for its collaborators here (no directory, no Keycloak): what is tested
is the HTTP layer's own behaviour, refused before any service call.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from click.testing import CliRunner, Result
from flask import redirect, request, session
from flask.testing import FlaskClient

from approval_portal import MAX_BODY_BYTES, create_app
from approval_portal.auth import InvalidToken, safe_next
from iacs import cli
from iacs.settings import MissingSecret, PortalSettings, Settings, SettingsError, load_settings
from iacs.stack.process import free_port


class StubOAuthClient:
    """Stands in for authlib's client: records the authorization redirect it was asked for."""

    def authorize_redirect(self, redirect_uri: str):
        session["_state_keycloak_stub"] = {"data": {"redirect_uri": redirect_uri}}
        return redirect(f"https://keycloak.test/auth?redirect_uri={redirect_uri}")

    def load_server_metadata(self) -> dict:
        return {"end_session_endpoint": "https://keycloak.test/logout"}


class StubVerifier:
    def verify(self, raw: str) -> dict:
        if raw != "good-token":
            raise InvalidToken("the bearer token's signature is not valid")
        return {"preferred_username": "sofia"}


class NoService:
    """Any call reaching the service fails the test: these requests must be refused before."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the service was called ({name}) for a request that must be refused")


@pytest.fixture(autouse=True)
def _store(redis_store) -> None:
    """Every app here keeps its sessions in the session's Redis (emptied per test)."""
    global _STORE
    _STORE = redis_store


_STORE = None


def make_app(secure: bool = False, **portal: object):
    settings = Settings(
        environment="development", portal=PortalSettings(session_cookie_secure=secure, **portal)
    )
    app = create_app(
        settings,
        service=NoService(),
        views=NoService(),
        oauth_client=StubOAuthClient(),
        token_verifier=StubVerifier(),
        session_store=_STORE,
    )
    app.testing = True
    return app


BEARER = {"Authorization": "Bearer good-token"}


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https:/evil.example",
        "javascript:alert(1)",
        "evil.example/path",
        "/ok\r\nLocation: https://evil.example",
        "/" + "a" * 600,
    ],
)
def test_open_redirect_after_sign_in_is_refused(target: str):
    client = make_app().test_client()
    refused = client.get("/auth/login", query_string={"next": target})
    assert refused.status_code == 400
    assert "relative path" in refused.get_data(as_text=True)
    assert "keycloak.test" not in refused.headers.get("Location", "")


def test_same_origin_relative_next_is_kept_for_after_sign_in():
    client = make_app().test_client()
    started = client.get("/auth/login", query_string={"next": "/organizations/org-123456789?x=1"})
    assert started.status_code == 302
    location = urlsplit(started.headers["Location"])
    assert location.netloc == "keycloak.test"
    assert parse_qs(location.query)["redirect_uri"] == ["http://127.0.0.1:5000/auth/callback"]
    with client.session_transaction() as stored:
        assert stored["after_login"] == "/organizations/org-123456789?x=1"


def test_safe_next_accepts_only_same_origin_paths():
    assert safe_next("/my") == "/my"
    assert safe_next("/approvals?page=2#top") == "/approvals?page=2#top"
    for bad in ("", None, "my", "//x", "/\\x", "http://x/", "/a\nb", "/a\x00b"):
        assert safe_next(bad) is None


@pytest.mark.parametrize("secure", [True, False])
def test_session_cookie_is_httponly_samesite_lax_and_secure_unless_local_http(secure: bool):
    client = make_app(secure=secure).test_client()
    started = client.get("/auth/login")
    cookie = started.headers["Set-Cookie"]
    assert cookie.startswith("iacs_portal=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure


def test_security_headers_on_pages_and_api():
    client = make_app().test_client()
    for path in ("/", "/api/v1/openapi.yaml", "/api/v1/me"):
        answer = client.get(path)
        headers = answer.headers
        assert "default-src 'self'" in headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
    static = client.get("/static/portal.css")
    assert static.status_code == 200
    assert static.headers.get("Cache-Control") != "no-store"


def test_hsts_only_when_cookies_are_secure():
    assert "Strict-Transport-Security" in make_app(secure=True).test_client().get("/").headers
    assert "Strict-Transport-Security" not in make_app().test_client().get("/").headers


def test_pages_send_anonymous_people_to_sign_in():
    client = make_app().test_client()
    for path in ("/my", "/approvals", "/help-desk", "/organizations/org-123456789"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/auth/login?next=")


def test_form_post_without_csrf_token_is_refused_before_the_service():
    client = make_app().test_client()
    with client.session_transaction() as stored:
        stored["username"] = "sofia"
    refused = client.post(
        "/requests/new/organization",
        data={"name": "X", "identifier": "123456789", "provider_type": "hospital"},
    )
    assert refused.status_code == 400
    assert "security token" in refused.get_data(as_text=True)
    assert 'role="alert"' in refused.get_data(as_text=True)
    forged = client.post("/roles/revoke", data={"csrf_token": "forged"})
    assert forged.status_code == 400


def test_session_authenticated_api_call_needs_the_csrf_token():
    client = make_app().test_client()
    with client.session_transaction() as stored:
        stored["username"] = "sofia"
    refused = client.post("/api/v1/requests", json={"kind": "end_user"})
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "csrf_failed"


def test_api_refuses_missing_or_invalid_credentials():
    client = make_app().test_client()
    anonymous = client.get("/api/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.json["error"]["code"] == "unauthenticated"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    for header in ("Bearer forged", "Basic c29maWE6cHc=", "Bearer", "bearer  "):
        refused = client.get("/api/v1/me", headers={"Authorization": header})
        assert refused.status_code == 401, header
    # A bad bearer token never falls back to a session that happens to be there.
    with client.session_transaction() as stored:
        stored["username"] = "sofia"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_oversized_bodies_are_refused():
    client = make_app().test_client()
    big = "x" * (MAX_BODY_BYTES + 1)
    api = client.post(
        "/api/v1/requests", data=big, headers={**BEARER, "Content-Type": "application/json"}
    )
    assert api.status_code == 413
    assert api.json["error"]["code"] == "body_too_large"
    with client.session_transaction() as stored:
        stored["username"] = "sofia"
    form = client.post("/requests/new/organization", data={"name": big})
    assert form.status_code == 413


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"kind": "end_user"}', "text/plain", 415),
        ("kind=end_user", "application/x-www-form-urlencoded", 415),
        ("{not json", "application/json", 400),
        ('["a", "list"]', "application/json", 400),
        ('"a string"', "application/json", 400),
    ],
)
def test_api_bodies_must_be_json_objects(body: str, content_type: str, status: int):
    client = make_app().test_client()
    answer = client.post(
        "/api/v1/requests", data=body, headers={**BEARER, "Content-Type": content_type}
    )
    assert answer.status_code == status
    assert set(answer.json["error"]) >= {"code", "message"}


def test_unknown_api_routes_and_methods_answer_json():
    client = make_app().test_client()
    missing = client.get("/api/v1/nowhere", headers=BEARER)
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    wrong_method = client.delete("/api/v1/approvals", headers=BEARER)
    assert wrong_method.status_code == 405


def test_openapi_documents_every_api_route():
    app = make_app()
    served = app.test_client().get("/api/v1/openapi.yaml")
    assert served.status_code == 200
    document = yaml.safe_load(served.get_data(as_text=True))
    documented = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = rule.rule.removeprefix("/api/v1").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method))
    assert routes == documented
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert operation.get("summary"), (path, method)
                assert operation.get("responses"), (path, method)


def test_sign_out_is_a_post_with_csrf_and_ends_the_keycloak_session():
    client = make_app().test_client()
    with client.session_transaction() as stored:
        stored["username"] = "sofia"
    assert client.get("/auth/logout").status_code == 405
    assert client.post("/auth/logout").status_code == 400  # no CSRF token
    page = client.get("/").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    out = client.post("/auth/logout", data={"csrf_token": token})
    assert out.status_code == 302
    location = urlsplit(out.headers["Location"])
    assert location.netloc == "keycloak.test"
    query = parse_qs(location.query)
    assert query["client_id"] == ["iacs-portal"]
    assert query["post_logout_redirect_uri"] == ["http://127.0.0.1:5000/"]
    with client.session_transaction() as stored:
        assert "username" not in stored


def test_healthz_answers_503_when_the_directory_does_not():
    class Unhealthy:
        def healthy(self) -> bool:
            return False

    app = create_app(
        Settings(environment="development"),
        service=NoService(),
        views=Unhealthy(),
        oauth_client=StubOAuthClient(),
        token_verifier=StubVerifier(),
        session_store=_STORE,
    )
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 503
    assert answer.json == {"status": "unavailable", "directory": "unreachable"}


# ------------------------------------------------------------ production fails closed (item 5)

DEV_KEY = PortalSettings.model_fields["secret_key"].default.get_secret_value()


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch, redis_server, tmp_path) -> pytest.MonkeyPatch:
    """A production environment with every portal secret set to a real value, except what the
    test takes away, and verified LDAPS (production refuses plain LDAP)."""
    for name in list(os.environ):
        if name.startswith("IACS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IACS_ENVIRONMENT", "production")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not read: the portal's own settings are refused first\n")
    monkeypatch.setenv("IACS_LDAP__URL", "ldaps://127.0.0.1:1")
    monkeypatch.setenv("IACS_LDAP__CA_FILE", str(ca_file))
    monkeypatch.setenv("IACS_PORTAL__SECRET_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv("IACS_LDAP__PORTAL_BIND_PASSWORD", secrets.token_urlsafe(24))
    monkeypatch.setenv("IACS_KEYCLOAK__PORTAL_CLIENT_SECRET", secrets.token_urlsafe(24))
    monkeypatch.setenv("IACS_PORTAL__SESSION_STORE_URL", redis_server.url)
    return monkeypatch


def _serve() -> Result:
    return CliRunner().invoke(cli.main, ["portal", "serve", "--port", str(free_port())])


def test_sec_dev_secret_refused_in_production_a_portal_without_secret_key_does_not_start(
    production_env: pytest.MonkeyPatch,
):
    production_env.delenv("IACS_PORTAL__SECRET_KEY")
    started = _serve()
    assert started.exit_code != 0
    assert "IACS_PORTAL__SECRET_KEY must be set" in started.output
    with pytest.raises(MissingSecret, match="IACS_PORTAL__SECRET_KEY"):
        create_app(session_store=_STORE)


@pytest.mark.parametrize(
    "variable",
    ["IACS_PORTAL__SECRET_KEY", "IACS_LDAP__PORTAL_BIND_PASSWORD", "IACS_KEYCLOAK__ADMIN_PASSWORD"],
)
def test_sec_dev_secret_refused_in_production_a_published_value_is_refused_at_start(
    production_env: pytest.MonkeyPatch, variable: str
):
    production_env.setenv(variable, DEV_KEY)
    started = _serve()
    assert started.exit_code == 2
    assert variable in started.output
    assert "published development secret" in started.output
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_sec_dev_secret_refused_in_production_every_secret_has_no_default(
    production_env: pytest.MonkeyPatch,
):
    settings = load_settings()
    for secret, variable in [
        (settings.ldap.sync_bind_password, "IACS_LDAP__SYNC_BIND_PASSWORD"),
        (settings.keycloak.admin_password, "IACS_KEYCLOAK__ADMIN_PASSWORD"),
        (settings.keycloak.sync_client_secret, "IACS_KEYCLOAK__SYNC_CLIENT_SECRET"),
    ]:
        with pytest.raises(MissingSecret, match=variable):
            secret.get_secret_value()
    production_env.delenv("IACS_PORTAL__SESSION_STORE_URL")
    assert "IACS_PORTAL__SESSION_STORE_URL" in _serve().output


def test_sec_development_keeps_its_defaults(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IACS_ENVIRONMENT", "development")
    assert load_settings().portal.secret_key.get_secret_value() == DEV_KEY


# ---------------------------------------------------------------- proxies and JSON (10, low)


def _echo_client(**portal: object) -> FlaskClient:
    app = make_app(**portal)
    app.add_url_rule(
        "/test-echo", "test_echo", lambda: {"addr": request.remote_addr, "scheme": request.scheme}
    )
    return app.test_client()


def test_sec_forwarded_headers_are_ignored_unless_a_proxy_is_trusted():
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    direct = _echo_client().get("/test-echo", headers=forged).json
    assert direct == {"addr": "127.0.0.1", "scheme": "http"}
    behind = _echo_client(trusted_proxies=1).get("/test-echo", headers=forged).json
    assert behind == {"addr": "203.0.113.9", "scheme": "https"}
    # One trusted proxy: only the address it appended counts, not what the client sent before.
    chained = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9", "X-Forwarded-Proto": "https"}
    assert _echo_client(trusted_proxies=1).get("/test-echo", headers=chained).json["addr"] == (
        "203.0.113.9"
    )


@pytest.mark.parametrize("depth", [17, 20_000])
def test_sec_deeply_nested_json_is_refused_with_400(depth: int):
    body = "[" * depth + "]" * depth
    assert len(body) < MAX_BODY_BYTES
    answer = (
        make_app()
        .test_client()
        .post("/api/v1/requests", data=body, content_type="application/json", headers=BEARER)
    )
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "bad_request"
