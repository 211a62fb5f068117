"""The worker's HTTP endpoint: ``/healthz``, Prometheus ``/metrics`` and ``POST /nudge``.

A standard-library threaded server on ``sync.listen``: it only reads the worker's state and
sets its nudge flag, so it needs no framework.

Protection: ``/nudge`` makes the worker run (someone who can post it at will can keep it busy)
and ``/metrics`` tells how many people changed and when, so neither is open to the network.
The default address is loopback. With ``IACS_SYNC__NUDGE_TOKEN`` set, both require
``Authorization: Bearer <token>`` (compared in constant time; 401 otherwise), wherever the
worker listens; on a non-loopback address the token is required, and ``serve`` refuses to
start without one. ``/healthz`` stays open for the orchestrator's probe: it says only whether
the last run worked.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from .worker import SyncWorker


class UnprotectedListenAddress(ValueError):
    """The worker was asked to listen beyond loopback without a nudge token."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name that may resolve anywhere, or "" (every interface)


def require_protected(listen: str, token: SecretStr | str | None) -> str | None:
    """The token's value (None if unset); ``UnprotectedListenAddress`` when ``listen`` is not
    loopback and there is no token."""
    secret = token.get_secret_value() if isinstance(token, SecretStr) else token
    host = listen.rpartition(":")[0] or "127.0.0.1"
    if not secret and not is_loopback(host):
        raise UnprotectedListenAddress(
            f"IACS_SYNC__LISTEN={listen} is not a loopback address: set IACS_SYNC__NUDGE_TOKEN "
            "(the portal sends it with its nudge), or listen on 127.0.0.1"
        )
    return secret or None


def _handler(worker: SyncWorker, token: str | None) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {token}".encode() if token else None

    class Handler(BaseHTTPRequestHandler):
        server_version = "iacs-sync"

        def _authorized(self) -> bool:
            """With a token configured, the request must carry it (else 401 is sent)."""
            if expected is None:
                return True
            given = (self.headers.get("Authorization") or "").encode("utf-8", "replace")
            if hmac.compare_digest(given, expected):
                return True
            body = json.dumps({"error": "a valid bearer token is required"}).encode()
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="iacs-sync"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return False

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: object) -> None:
            self._send(status, json.dumps(value).encode(), "application/json")

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                healthy, details = worker.health()
                self._json(200 if healthy else 503, details)
            elif path == "/metrics":
                if self._authorized():
                    self._send(200, generate_latest(worker.metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] == "/nudge":
                if self._authorized():
                    worker.nudge()
                    self._json(202, {"status": "nudged"})
            else:
                self._json(404, {"error": "not found"})

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the worker logs what matters."""

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    """The listen backlog (5 by default): a burst of nudges from a busy portal must not have
    its connections dropped and retried a second later."""


def serve(
    worker: SyncWorker, listen: str, token: SecretStr | str | None = None
) -> ThreadingHTTPServer:
    """Serve the endpoint on ``host:port`` in a daemon thread; ``shutdown()`` stops it.

    Raises ``UnprotectedListenAddress`` (before binding anything) for a non-loopback address
    without ``token``.
    """
    secret = require_protected(listen, token)
    host, _, port = listen.rpartition(":")
    server = _Server(((host or "127.0.0.1").strip("[]"), int(port)), _handler(worker, secret))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sync-http", daemon=True).start()
    return server
