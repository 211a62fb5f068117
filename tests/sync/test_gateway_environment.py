"""The gateway reads proxy and CA settings from the environment once, as requests would have."""

from __future__ import annotations

from types import SimpleNamespace

import requests
import urllib3

from sync.gateway import _http_pool, _read_environment_once

KEYCLOAK = "http://keycloak.internal:8080/"


def test_reads_go_through_the_environments_proxy_unless_no_proxy_names_the_host(
    monkeypatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert isinstance(_http_pool(KEYCLOAK, 4), urllib3.ProxyManager)
    monkeypatch.setenv("NO_PROXY", "keycloak.internal")
    assert not isinstance(_http_pool(KEYCLOAK, 4), urllib3.ProxyManager)


def test_the_ca_bundle_of_the_environment_is_kept_when_requests_stops_reading_it(
    monkeypatch, tmp_path
) -> None:
    bundle = tmp_path / "ca.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    connection = SimpleNamespace(_s=requests.Session(), verify=True)
    _read_environment_once(SimpleNamespace(connection=connection), KEYCLOAK)
    assert connection._s.trust_env is False
    assert connection.verify == str(bundle)
    assert connection._s.proxies["http"] == "http://proxy.example:3128"
    assert _http_pool(KEYCLOAK, 4).connection_pool_kw["ca_certs"] == str(bundle)
