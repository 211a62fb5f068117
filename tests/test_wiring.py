"""The portal's nudge to the sync worker: off the request path, bursts collapsed."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from iacs.stack.process import free_port
from iacs.wiring import SyncNudge, sync_nudge


def _counting_server(release: threading.Event) -> tuple[ThreadingHTTPServer, list[float]]:
    posts: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(time.monotonic())
            release.wait(30)  # a busy worker: no answer until the test says so
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, posts


def test_a_burst_of_decisions_does_not_wait_for_the_worker_and_costs_few_nudges() -> None:
    release = threading.Event()
    server, posts = _counting_server(release)
    try:
        nudge = SyncNudge(f"http://127.0.0.1:{server.server_port}/nudge", timeout=30)
        calls = [threading.Thread(target=nudge) for _ in range(50)]
        for call in calls:
            call.start()
        for call in calls:
            call.join(timeout=10)
            assert not call.is_alive(), "a decision waited for the worker"
        _until(lambda: len(posts) == 1)
        assert len(posts) == 1  # the worker has not answered: one post in flight, no more
        release.set()
        _until(lambda: not nudge._pending.is_set())
        time.sleep(0.2)
        settled = len(posts)
        assert settled in (1, 2)  # the burst behind the first post collapsed into one more
        nudge()  # a later decision gets a nudge of its own
        _until(lambda: len(posts) == settled + 1)
    finally:
        release.set()
        server.shutdown()


def _until(check, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.01)


def test_a_worker_that_is_down_costs_a_decision_nothing() -> None:
    nudge = sync_nudge(f"http://127.0.0.1:{free_port()}/nudge")
    assert nudge is not None
    nudge()  # nobody listens: the post fails on the nudge thread, quietly
    assert sync_nudge(None) is None
