"""The dev stack's env file can be sourced by a POSIX shell and gives back every value as is."""

from __future__ import annotations

import subprocess

from iacs.settings import Settings, settings_to_env
from iacs.stack.local import shell_env_file


def test_the_env_file_sources_in_sh_and_reads_back_every_value(tmp_path):
    env = settings_to_env(Settings(environment="development"))
    env["IACS_PORTAL__PUBLIC_URL"] = "http://127.0.0.1:5000/?a=1&b=2"
    hostile = 'it\'s $HOME `id` "quoted" {"a": [1, 2]} *; echo pwned'
    env["IACS_KEYCLOAK__SYNC_CLIENT_SECRET"] = hostile
    assert any(value.startswith(("{", "[")) for value in env.values())  # JSON settings too
    path = tmp_path / "env"
    path.write_text(shell_env_file(env))

    names = sorted(env)
    script = 'set -a; . "$1"; set +a; printf "%s\\0" ' + " ".join(f'"${name}"' for name in names)
    result = subprocess.run(
        ["sh", "-c", script, "sh", str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stderr == ""
    values = result.stdout.split("\0")[:-1]
    assert dict(zip(names, values, strict=True)) == env
    assert "pwned" not in result.stdout.replace(hostile, "")
