"""The connection pool: shared by threads, typed failures, one retry on a dropped connection."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import SecretStr

from iacs.directory import BindFailed, Directory, DirectoryUnavailable
from iacs.directory.connection import ConnectionPool
from iacs.stack.process import free_port

pytestmark = pytest.mark.servers


def test_one_directory_serves_many_threads(directory, make_person):
    names = [f"user-{number}" for number in range(12)]
    for name in names:
        make_person(name)

    def read(name: str) -> str:
        return "".join(directory.get_person(name).username for _ in range(10))

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(read, names)) == [name * 10 for name in names]


def test_a_dropped_connection_is_replaced_before_reuse(directory, make_person):
    make_person("alice")
    assert directory.get_person("alice") is not None
    for connection in directory._pool._idle:
        connection.socket.close()  # as if slapd had closed idle connections
    assert directory.get_person("alice") is not None


def test_an_operation_on_a_connection_that_drops_is_retried_once(
    directory, make_person, monkeypatch
):
    make_person("alice")
    assert directory.get_person("alice") is not None
    monkeypatch.setattr(ConnectionPool, "_stale", staticmethod(lambda connection: False))
    for connection in directory._pool._idle:
        connection.socket.shutdown(2)  # the next send or receive fails mid-operation
    assert directory.get_person("alice") is not None
    assert directory.memberships_of("alice") == frozenset()


def test_an_unreachable_directory_raises_directory_unavailable(ldap_settings):
    settings = ldap_settings.model_copy(
        update={"url": f"ldap://127.0.0.1:{free_port()}", "timeout_seconds": 1}
    )
    with Directory(settings, "portal") as directory:
        with pytest.raises(DirectoryUnavailable):
            directory.get_person("alice")
        assert directory.ping() is False


def test_a_wrong_password_raises_bind_failed(ldap_settings):
    settings = ldap_settings.model_copy(update={"portal_bind_password": SecretStr("wrong")})
    with Directory(settings, "portal") as directory, pytest.raises(BindFailed):
        directory.get_person("alice")


def test_ping(directory):
    assert directory.ping() is True
