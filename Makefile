# The two commands of the README: `make demo` runs the whole system with demo data,
# `make test` runs the test suite. Both install what they need first (scripts/setup.sh).
.PHONY: setup demo test lint lock bench bench-ci

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/iacs dev

# CI runs `make test`, so the tests run after every check of `make lint`.
test: lint
	.venv/bin/python -m pytest -q

# Style; the layers (pyproject.toml [tool.importlinter]: no import climbs a layer, no cycle);
# the types (pyproject.toml [tool.mypy]: strict on the core).
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	.venv/bin/mypy

# The lock files (exact versions, with hashes) for pyproject.toml's declared ranges, with
# pip-tools in a venv of its own. Existing pins stay; `make lock LOCK_ARGS=--upgrade` moves every
# pin to the newest allowed version. See docs/deployment.md ("Dependencies: the lock files").
# Compiled on Debian 12's own Python (3.11.2, what the image runs): some pins depend on the
# patch level (redis needs async-timeout below 3.11.3).
LOCK_PYTHON = /usr/bin/python3
PIP_TOOLS_VERSION = 7.5.2
PIP_COMPILE = .venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--all-build-deps --no-emit-find-links $(LOCK_ARGS)
lock:
	test -x .venv-lock/bin/pip-compile || ($(LOCK_PYTHON) -m venv .venv-lock \
	  && .venv-lock/bin/pip install -q "pip-tools==$(PIP_TOOLS_VERSION)")
	$(PIP_COMPILE) --output-file=requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra=bench --extra=test --output-file=requirements-dev.lock pyproject.toml

bench: setup
	.venv/bin/iacs bench --size full

bench-ci: setup
	.venv/bin/iacs bench --size ci
