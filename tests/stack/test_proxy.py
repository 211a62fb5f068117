"""The proxy's configuration: Keycloak's paths to Keycloak, the rest (the portal's /auth/login
too) to the portals, retries only where a request is safe to pass on, and no injection."""

from __future__ import annotations

from pathlib import Path

import pytest

from iacs.stack.proxy import KEYCLOAK_PATHS, render_config, start_proxy
from iacs.stack.tls import ensure_server_tls


def _config(tmp_path: Path, **kwargs) -> str:
    tls = ensure_server_tls(tmp_path / "tls")
    return render_config(listen="127.0.0.1:8443", tls=tls, run_dir=tmp_path, **kwargs)


def test_keycloak_gets_its_own_prefixes_and_the_portal_everything_else(tmp_path: Path):
    text = _config(tmp_path, portals=["127.0.0.1:5001", "127.0.0.1:5002"], keycloaks=["k:8443"])
    for prefix in KEYCLOAK_PATHS:
        assert f"location {prefix} {{" in text
    assert "location /auth/ {" not in text  # /auth/login and /auth/callback are the portal's
    assert "location / {" in text
    assert text.count("max_fails=1") == 3
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in text
    assert "non_idempotent" not in text  # a POST that reached an instance is never sent again
    assert "proxy_ssl_verify on;" in text


@pytest.mark.parametrize(
    "upstream", ["127.0.0.1:1; } server { listen 80", "host", "a b:1", "$host:80", "x:8o"]
)
def test_sec_proxy_config_injection_through_an_upstream_is_refused(tmp_path: Path, upstream):
    with pytest.raises(ValueError, match="host:port"):
        _config(tmp_path, portals=[upstream])


def test_a_proxy_needs_something_to_proxy(tmp_path: Path):
    with pytest.raises(ValueError, match="at least one"):
        _config(tmp_path)


def test_nginx_accepts_the_config_and_serves_tls(tmp_path: Path):
    import requests

    tls = ensure_server_tls(tmp_path / "tls")
    with start_proxy(tmp_path / "proxy", tls=tls, portals=["127.0.0.1:9"]) as proxy:
        answer = requests.get(f"{proxy.url}/healthz", verify=str(tls.ca_file), timeout=30)
        assert answer.status_code == 502  # TLS verified; the only portal is not there
        assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert not proxy.running
