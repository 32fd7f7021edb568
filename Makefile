# Orchestra: the two commands are `make run` and `make test`.
# Both create .venv and install the pinned requirements on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench lint browser install install-dev requirements clean-var

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A stamp per requirements file: reinstall only when the pins change.
$(VENV)/.base-installed: requirements/base.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/base.txt
	@touch $@

$(VENV)/.dev-installed: requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt
	@touch $@ $(VENV)/.base-installed

install: $(VENV)/.base-installed
install-dev: $(VENV)/.dev-installed

## make run: embedded PostgreSQL + Redis when DATABASE_URL / REDIS_URL are unset,
## migrate, first-run workspace and owner, then web + Celery worker + beat.
run: install
	$(BIN)/python -m orchestra.launcher

## make test: lint, Django checks, migrations check, the whole pytest suite.
test: install-dev lint browser
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

## make bench: ingest benchmarks against the production server (gunicorn) on a fresh
## orchestra_bench database, each beside PostgreSQL COPY of the same rows in the same run.
## Results: bench/results/*.json and docs/benchmarks.md. SCALE=quick|full for other sizes.
bench: install-dev
	$(BIN)/python -m bench

## The browser tests drive Debian's Chromium; install it when missing and we may.
browser:
	@if [ -z "$$CHROMIUM_PATH" ] && ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Installing Chromium for the browser tests (apt-get install chromium)"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
				|| echo "Chromium could not be installed: the browser tests will be skipped."; \
		else \
			echo "Chromium not found: the browser tests will be skipped (apt-get install chromium)."; \
		fi; \
	fi

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Re-pin requirements/*.txt from pyproject.toml (the single source of truth).
requirements: install-dev
	$(BIN)/pip-compile --quiet --strip-extras --annotation-style line --no-emit-index-url \
		--no-emit-find-links --no-emit-trusted-host -o requirements/base.txt pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --annotation-style line --no-emit-index-url \
		--no-emit-find-links --no-emit-trusted-host --extra dev -o requirements/dev.txt pyproject.toml

## Removes the embedded databases, generated secrets and uploads under var/.
clean-var:
	rm -rf var/
