# The two commands of the README: `make demo` runs the whole system with demo data,
# `make test` runs the test suite. Both install what they need first (scripts/setup.sh).
.PHONY: setup demo test lint bench bench-ci

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

bench: setup
	.venv/bin/iacs bench --size full

bench-ci: setup
	.venv/bin/iacs bench --size ci
