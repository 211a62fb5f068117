#!/usr/bin/env bash
# Everything a fresh Debian machine needs to run the stack and the tests. Idempotent and quick
# when already done: each step checks before it installs.
#   - Debian packages: slapd, ldap-utils (the directory), redis-server (the portal's sessions),
#     postgresql and nginx-light (the clustered Keycloak's database, the scale-out proxy),
#     chromium (browser tests),
#     chromium and npm (browser tests; axe-core comes from npm),
#     a Java runtime and Maven (to fetch and run Keycloak);
#     docker.io, docker-compose and mmdebstrap (the compose suite's private engine);
#   - a virtualenv in .venv: the exact, hash-checked versions of requirements-dev.lock, then the
#     project itself (editable, --no-deps);
#   - the Keycloak server distribution, fetched with Maven into a cache outside the repo
#     (~/.cache/iacs, or $IACS_CACHE_DIR) and built once.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || need_apt+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || need_apt+=(ldap-utils)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# PostgreSQL (the Keycloak cluster's database) and nginx (the TLS proxy of the scaled-out tests).
command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
  || need_apt+=(postgresql)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
[ -x /usr/sbin/dockerd ] || need_apt+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v mmdebstrap >/dev/null 2>&1 || need_apt+=(mmdebstrap)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  # slapd's postinst must not start a system daemon or ask questions.
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.iacs-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements-dev.lock -nt "$stamp" ]; then
  echo "setup: installing Python packages (requirements-dev.lock, hash-checked)"
  .venv/bin/python -m pip install -q --require-hashes -r requirements-dev.lock
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  touch "$stamp"
fi

# axe-core for the browser tests' accessibility check (tests/browser/package-lock.json).
if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
  echo "setup: installing axe-core for the browser tests"
  npm ci --prefix tests/browser --no-audit --no-fund >/dev/null
fi

echo "setup: fetching and building Keycloak (cached after the first time)"
.venv/bin/python -c 'from iacs.stack.keycloak import ensure_distribution; print("setup: keycloak at", ensure_distribution())'
echo "setup: done"
