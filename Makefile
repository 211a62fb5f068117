# The two commands of the README: `make demo` runs the whole system with demo data,
# `make test` runs the test suite. Both install what they need first (scripts/setup.sh).
.PHONY: setup demo test lint bench bench-ci

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/iacs dev

test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup
	.venv/bin/iacs bench --size full

bench-ci: setup
	.venv/bin/iacs bench --size ci
