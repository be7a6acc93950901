# The README's commands. `make up` runs the whole system locally; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install up test test-fast docs bench lint format protos openapi clean browser servers tools secrets

# Everything the tests need: the runtime dependencies, the embedded servers of the local stack
# (local), the ETL's charts (reports) and the tools (dev). The images take only some (Dockerfile).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,local,reports]'
	touch $(STAMP)

install: $(STAMP)

up: install
	$(PY) -m devstack up

# FerretDB, the local activity store: built once per machine from the Go module proxy, into
# ~/.cache/fitness-goal-tracker/tools (FITNESS_TOOLS_DIR).
tools: install
	@$(PY) -m devstack tools

# Compose's passwords and keys, into deploy/secrets: made once, never rotated by running it again.
secrets: install
	$(PY) -m deploy.make_secrets

# tests/live/test_live_page.py drives the Debian chromium in headless mode.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" -eq 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || echo "chromium is missing: tests/live/test_live_page.py will skip (as root: apt-get install -y chromium)"

# PostgreSQL, etcd and Patroni (its own virtualenv on Debian's Python, from
# deploy/patroni/requirements.txt) for tests/deployment/test_failover_postgres.py, nginx for
# tests/deployment/test_deploy_files.py.
FITNESS_PATRONI_HOME ?= /opt/fitness-patroni
servers:
	@{ ls /usr/lib/postgresql/*/bin/initdb && test -x /usr/sbin/nginx && test -x /usr/bin/etcd && /usr/bin/python3 -c 'import ensurepip'; } >/dev/null 2>&1 || { [ "$$(id -u)" -eq 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql nginx etcd-server python3-venv; } || echo "postgresql/nginx/etcd missing: their tests will skip"
	@test -x $(FITNESS_PATRONI_HOME)/bin/patroni || { [ "$$(id -u)" -eq 0 ] && /usr/bin/python3 -m venv $(FITNESS_PATRONI_HOME) && $(FITNESS_PATRONI_HOME)/bin/pip install --quiet --disable-pip-version-check -r deploy/patroni/requirements.txt; } || echo "patroni missing: the PostgreSQL failover test will skip"

test: install lint tools browser servers
	$(PY) -m pytest

# The in-process unit tests only (goal rules, workout rules, the saga state machine): seconds.
test-fast: install
	$(PY) -m pytest tests/unit

# The hardening suites: each starts its own stack on free ports, prints its figures and saves
# them in bench/results/; the last step writes the results table into docs/hardening.md. ~20 minutes.
bench: install tools servers
	$(PY) -m bench.faults
	$(PY) -m bench.load_knee
	$(PY) -m bench.api_fuzz
	$(PY) -m bench.ws_fuzz
	$(PY) -m bench.security_probe
	$(PY) -m bench.results

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

protos: install
	$(PY) -m fitness.protogen

openapi: install
	$(PY) -m apidocs

docs: install
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
