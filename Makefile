# Consentry — `make run` and `make test` work on a fresh Debian machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test bench lint typecheck messages unit system-deps node-deps bench-deps python-venv clean

## run: install and start `consentry serve` on the embedded default (SQLite, database queue)
run: $(VENV)/.installed
	$(BIN)/consentry serve

## test: install everything (PostgreSQL, Redis, Chromium with apt-get when missing), lint, type check, test
test: $(VENV)/.installed-dev system-deps node-deps lint typecheck
	$(BIN)/pytest

## bench: Consentry on one pinned core against the peers in ../shared/peers, SQLite and PostgreSQL
bench: $(VENV)/.installed-dev system-deps bench-deps
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-deps:
	@command -v wrk >/dev/null 2>&1 || { $(APT) update -q && $(APT) install -y -q --no-install-recommends wrk; }

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/vulture
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

## messages: extract the pages' text (babel.cfg) and merge it into each language's catalog to translate
LOCALE_DIR := src/consentry/locale
messages: $(VENV)/.installed-dev
	$(BIN)/pybabel --quiet extract -F babel.cfg --no-location --sort-output --omit-header -o $(LOCALE_DIR)/messages.pot src/consentry
	$(BIN)/pybabel --quiet update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) --no-fuzzy-matching --ignore-obsolete

python-venv:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { $(APT) update -q && $(APT) install -y -q python3-venv; }

$(BIN)/python:
	@$(MAKE) --no-print-directory python-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed

# What the tests take from npm, pinned by each package-lock.json: panva's oidc-provider (an upstream OpenID
# provider) and axe-core (accessibility checks in Chromium).
NODE_TOOLS := tests/upstream_provider tests/axe
node-deps: $(NODE_TOOLS:%=%/node_modules/.installed)

%/node_modules/.installed: %/package-lock.json
	@command -v npm >/dev/null 2>&1 || { $(APT) update -q && $(APT) install -y -q --no-install-recommends nodejs npm; }
	npm ci --prefix $* --no-audit --no-fund --loglevel=error
	@touch $@

# Servers the tests start themselves (throwaway clusters on free ports); installed only when missing.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(APT) update -q && $(APT) install -y -q --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis src/*.egg-info
