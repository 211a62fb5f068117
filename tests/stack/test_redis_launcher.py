"""The Redis launcher: loopback only, a password, a private directory, never left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from iacs.stack.process import ServerStartError, port_open
from iacs.stack.redis import start_redis


def test_redis_starts_on_loopback_with_a_password_and_stops(tmp_path: Path):
    with start_redis(tmp_path / "redis") as instance:
        assert instance.client().ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=instance.port, socket_timeout=2).ping()
        with pytest.raises(redis.ResponseError):  # no run-time reconfiguration
            instance.client().execute_command("CONFIG", "GET", "requirepass")
        config = (tmp_path / "redis" / "redis.conf").stat()
        assert oct(config.st_mode & 0o777) == "0o600"
        assert (tmp_path / "redis").stat().st_mode & 0o077 == 0
        port = instance.port
    assert not instance.running
    assert not port_open("127.0.0.1", port)


def test_a_port_in_use_fails_the_start_and_leaves_nothing(tmp_path: Path):
    with start_redis(tmp_path / "first") as first:
        with pytest.raises(ServerStartError):
            start_redis(tmp_path / "second", port=first.port, timeout=10)
        assert first.client().ping()
