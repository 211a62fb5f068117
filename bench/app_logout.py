"""The sample application in the benchmark: how soon it refuses a person whose role was revoked.

One instance of ``examples.pqri_psr_app`` for the benchmark's application client runs on a
loopback port, and the realm names its back-channel logout URL, so Keycloak sends it a logout
token when the sync worker logs a revoked person out. Each sample person's sign-in is *adopted*:
the tokens the benchmark already gets from the password grant (a client session in Keycloak,
which is what Keycloak sends logout tokens for) become a sign-in in the app's store, and a
browser cookie for it is made with the app's own session serializer. The app's code flow would
cost a login form per sample and is not what is measured; everything after it (the logout token
from Keycloak, its verification, the refusal of the next request) is the app's real code.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import requests
from flask.sessions import SecureCookieSessionInterface
from werkzeug.serving import make_server

from examples.pqri_psr_app import AppConfig, SignInStore, create_app
from examples.pqri_psr_app.app import CALLBACK_PATH, SignedIn
from examples.pqri_psr_app.claims import IacsClaims
from examples.pqri_psr_app.logout import BACKCHANNEL_LOGOUT_PATH

from .tokens import decode_claims

PROTECTED_PATH = "/reports"


class SampleApp:
    """The sample app on ``127.0.0.1:port``, serving in a thread until ``stop``."""

    def __init__(
        self, port: int, *, client_id: str, client_secret: str, keycloak_url: str, realm: str
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.config = AppConfig(
            client_id=client_id,
            client_secret=client_secret,
            keycloak_url=keycloak_url,
            realm=realm,
            issuer=f"{keycloak_url.rstrip('/')}/realms/{realm}",
            redirect_uri=f"{self.url}{CALLBACK_PATH}",
        )
        self.store = SignInStore()
        self.app = create_app(self.config, store=self.store)
        self._server = make_server("127.0.0.1", port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def backchannel_logout_url(self) -> str:
        return f"{self.url}{BACKCHANNEL_LOGOUT_PATH}"

    def start(self) -> SampleApp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def adopt(self, tokens: dict[str, Any]) -> requests.Session:
        """A browser signed in to the app with ``tokens`` (a token response with an ID token)."""
        id_claims = decode_claims(tokens["id_token"])  # Keycloak's, just issued over loopback
        sid = secrets.token_urlsafe(32)
        self.store.put(
            sid,
            SignedIn(
                claims=IacsClaims.from_token(id_claims),
                id_token=tokens["id_token"],
                refresh_token=None,  # the benchmark keeps refreshing with its own copy
                claims_expire_at=time.time() + float(tokens.get("expires_in", 300)),
                subject=id_claims["sub"],
                keycloak_session=id_claims.get("sid"),
            ),
        )
        interface = self.app.session_interface
        assert isinstance(interface, SecureCookieSessionInterface)  # Flask's default
        serializer = interface.get_signing_serializer(self.app)
        assert serializer is not None  # the app has a secret key
        cookie = serializer.dumps({"sid": sid})
        browser = requests.Session()
        browser.cookies.set(self.app.config["SESSION_COOKIE_NAME"], cookie)
        return browser

    def refuses(self, browser: requests.Session) -> bool:
        """Whether the app sends this browser to sign in again (its sign-in has ended)."""
        answer = browser.get(f"{self.url}{PROTECTED_PATH}", allow_redirects=False, timeout=30)
        return answer.status_code == 302 and answer.headers["Location"].startswith("/login")


def poll_refused(
    app: SampleApp, browser: requests.Session, timeout: float, interval: float = 0.02
) -> float | None:
    """``time.perf_counter()`` when the app first refuses the browser, or None after ``timeout``."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if app.refuses(browser):
            return time.perf_counter()
        time.sleep(interval)
    return None
