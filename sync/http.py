"""The worker's HTTP endpoint: ``/healthz``, Prometheus ``/metrics`` and ``POST /nudge``.

A standard-library threaded server on ``sync.listen``: it only reads the worker's state and
sets its nudge flag, so it needs no framework. Bind it to a private address.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .worker import SyncWorker


def _handler(worker: SyncWorker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "iacs-sync"

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
                self._send(200, generate_latest(worker.metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] == "/nudge":
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


def serve(worker: SyncWorker, listen: str) -> ThreadingHTTPServer:
    """Serve the endpoint on ``host:port`` in a daemon thread; ``shutdown()`` stops it."""
    host, _, port = listen.rpartition(":")
    server = _Server((host or "127.0.0.1", int(port)), _handler(worker))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sync-http", daemon=True).start()
    return server
