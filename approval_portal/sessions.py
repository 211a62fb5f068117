"""Server-side sessions in Redis, shared by every portal process and host, that really end.

A signed cookie cannot be revoked: replayed after logout it still worked, and every use renewed
it for 8 hours. Here the cookie carries only a random session id (256 bits); the session lives
in Redis under ``iacs:session:<id>``, so it ends on the server side:

- **logout** deletes the record (Flask-Session deletes a cleared session);
- **idle timeout**: the record's TTL is the idle timeout, renewed by each request;
- **absolute lifetime**: a session signed in longer ago than the lifetime is deleted when it is
  opened, and its TTL never reaches past that instant;
- **back-channel logout** (``approval_portal.backchannel``): Keycloak's ``sid`` and ``sub`` index
  the portal sessions they started (``iacs:oidc-sid:<sid>``, ``iacs:oidc-sub:<sub>``), so ending
  the Keycloak session deletes them.

Why Flask-Session with redis-py rather than our own interface: it is Pallets-community
maintained, already does the id generation, the cookie and the TTL upsert; we add only what it
lacks (the absolute lifetime, the index, and no resurrection: a request in flight while its
session is deleted must not write it back, so an existing record is only ever updated with
``SET XX``).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import redis
from flask import Flask, Request
from flask_session.redis import RedisSessionInterface
from flask_session.redis.redis import RedisSession

from iacs.settings import Settings

SESSION_PREFIX = "iacs:session:"
SID_INDEX = "iacs:oidc-sid:"
SUB_INDEX = "iacs:oidc-sub:"
SIGNED_IN_AT = "signed_in_at"


class StoreNotConfigured(RuntimeError):
    """No session store: the portal refuses to start rather than keep sessions per process."""


def redis_client(settings: Settings) -> redis.Redis:
    """The Redis client of ``IACS_PORTAL__SESSION_STORE_URL`` (sessions and rate limits)."""
    url = settings.portal.session_store_url
    if url is None:
        raise StoreNotConfigured(
            "IACS_PORTAL__SESSION_STORE_URL must be set (redis://:<password>@host:port/0): the "
            "portal keeps its sessions in the Redis every portal process shares"
        )
    return redis.Redis.from_url(
        url.get_secret_value(), socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
    )


class PortalSession(RedisSession):
    """A server-side session that knows whether its record already existed in the store."""

    stored: bool = False


class PortalSessionInterface(RedisSessionInterface):
    """Flask-Session's Redis interface with an absolute lifetime and without resurrection."""

    session_class = PortalSession

    def __init__(self, app: Flask, client: redis.Redis, idle: int, lifetime: int) -> None:
        super().__init__(
            app,
            client=client,
            key_prefix=SESSION_PREFIX,
            permanent=True,
            sid_length=32,
            serialization_format="msgpack",
        )
        self.idle = idle
        self.lifetime = lifetime

    def open_session(self, app: Flask, request: Request) -> PortalSession:
        session: PortalSession = super().open_session(app, request)
        cookie = request.cookies.get(app.config["SESSION_COOKIE_NAME"])
        session.stored = bool(cookie) and session.sid == cookie
        signed_in_at = session.get(SIGNED_IN_AT)
        expired = isinstance(signed_in_at, int) and time.time() - signed_in_at >= self.lifetime
        if session.stored and expired:
            self.end(session.sid)
            return self.session_class(sid=self._generate_sid(self.sid_length), permanent=True)
        return session

    def regenerate(self, session: Any) -> None:
        """A new id (sign-in: no session fixation); the old record is deleted."""
        self.end(session.sid)
        session.sid = self._generate_sid(self.sid_length)
        session.modified = True
        session.stored = False

    def _upsert_session(self, session_lifetime: timedelta, session: Any, store_id: str) -> None:
        ttl = self.idle
        signed_in_at = session.get(SIGNED_IN_AT)
        if isinstance(signed_in_at, int):
            ttl = min(ttl, max(1, int(signed_in_at + self.lifetime - time.time())))
        data = self.serializer.encode(session)
        if getattr(session, "stored", False):
            # Deleted meanwhile (logout, back-channel logout, expiry): stays deleted.
            self.client.set(store_id, data, ex=ttl, xx=True)
        else:
            self.client.set(store_id, data, ex=ttl)
            session.stored = True

    # -- ending sessions -----------------------------------------------------------------------

    def end(self, sid: str) -> None:
        """Delete one portal session by its id."""
        self.client.delete(SESSION_PREFIX + sid)

    def index(self, sid: str, oidc_sid: str | None, oidc_sub: str | None) -> None:
        """Remember which Keycloak session (and subject) this portal session belongs to."""
        pipe = self.client.pipeline()
        for key in (SID_INDEX + oidc_sid if oidc_sid else None, SUB_INDEX + (oidc_sub or "")):
            if key and not key.endswith(":"):
                pipe.sadd(key, sid)
                pipe.expire(key, self.lifetime)
        pipe.execute()

    def end_keycloak_session(self, oidc_sid: str | None, oidc_sub: str | None) -> int:
        """Delete every portal session started by this Keycloak session (or, without a ``sid``,
        every one of this subject); the number ended."""
        keys = [SID_INDEX + oidc_sid] if oidc_sid else [SUB_INDEX + (oidc_sub or "")]
        sids: set[bytes] = set()
        for key in keys:
            sids |= self.client.smembers(key)
        ended = 0
        if sids:
            ended = int(self.client.delete(*(SESSION_PREFIX.encode() + s for s in sids)))
        self.client.delete(*keys)
        return ended


def init_app(app: Flask, settings: Settings, client: redis.Redis | None = None) -> redis.Redis:
    """Install the Redis session interface on ``app``; answers the client for other uses."""
    client = client or redis_client(settings)
    portal = settings.portal
    idle = timedelta(seconds=portal.session_idle_timeout_seconds)
    app.config["PERMANENT_SESSION_LIFETIME"] = idle
    app.config["SESSION_REFRESH_EACH_REQUEST"] = True
    app.session_interface = PortalSessionInterface(
        app,
        client,
        idle=portal.session_idle_timeout_seconds,
        lifetime=portal.session_lifetime_seconds,
    )
    return client
