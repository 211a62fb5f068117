"""Rate limit on refused attempts, per person, shared by every portal process through Redis.

An outsider who tries one organization's requests again and again fills its audit record with
denials (AUD-1 records each one) and probes ids. Each refused answer (403 or 404 from the
service) counts against the person who asked; past ``refused_attempts_per_minute`` in a moving
window, every call of that person is answered 429 with ``Retry-After`` until the window has
room, before the service (and the directory) is asked anything.

Why ``limits`` rather than Flask-Limiter's decorators: Flask-Limiter checks its limits before
the blueprint has authenticated the caller, and counts requests, not outcomes of the service;
``limits`` is the library underneath Flask-Limiter (same author, same Redis storage), used here
for exactly the two calls needed: ``hit`` on a refusal and ``test`` before serving.
"""

from __future__ import annotations

import math
import time

import redis
from flask import Flask, Response, current_app, g
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from approval_portal.errors import error_response
from iacs.settings import Settings

NAMESPACE = "refused"


class RefusalLimiter:
    """Counts refusals per person; tells whether a person may be served now."""

    def __init__(self, client: redis.Redis, per_minute: int) -> None:
        # limits builds its own client from a URL; hand it the portal's pool instead.
        storage = RedisStorage(
            "redis://", connection_pool=client.connection_pool, key_prefix="iacs:limits"
        )
        self.limiter = MovingWindowRateLimiter(storage)
        self.item = RateLimitItemPerMinute(per_minute)

    def refused(self, username: str) -> None:
        """One more refused attempt by ``username``."""
        self.limiter.hit(self.item, NAMESPACE, username)

    def retry_after(self, username: str) -> int | None:
        """Seconds until ``username`` may be served again, or None when they may be now."""
        if self.limiter.test(self.item, NAMESPACE, username):
            return None
        stats = self.limiter.get_window_stats(self.item, NAMESPACE, username)
        return max(1, math.ceil(stats.reset_time - time.time()))


def init_app(app: Flask, settings: Settings, client: redis.Redis) -> None:
    app.extensions["iacs.refusals"] = RefusalLimiter(
        client, settings.portal.refused_attempts_per_minute
    )
    app.after_request(count_refusals)


def limiter() -> RefusalLimiter:
    return current_app.extensions["iacs.refusals"]


def refused_too_often(username: str | None) -> Response | None:
    """429 with ``Retry-After`` when ``username`` was refused too often lately, else None."""
    if not username:
        return None
    wait = limiter().retry_after(username)
    if wait is None:
        return None
    response = error_response(
        429, "too_many_requests", f"too many refused attempts; try again in {wait} seconds"
    )
    response.headers["Retry-After"] = str(wait)
    return response


def count_refusals(response: Response) -> Response:
    """After each request: a 403 or 404 answered to a signed-in person counts against them."""
    username = g.get("username")
    if username and response.status_code in (403, 404):
        limiter().refused(username)
    return response
