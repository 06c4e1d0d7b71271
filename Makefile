# Two commands do everything on a fresh Debian machine: `make demo` and `make test`.
# Both install what is missing (idempotently) before they run.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := chromium chromium-headless-shell xvfb scrot xdotool fonts-wqy-microhei
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test check docs deps system-deps lint unit bench bench-deps clean

demo: deps
	bash scripts/demo.sh

# the tests' (and bench/cluster.py's) PostgreSQL and Redis: the machine's own, or private ones for this run only
SERVICES = dir=$$(mktemp -d /tmp/robots-services.XXXXXX); \
	trap 'scripts/services.sh stop '"$$dir" EXIT; \
	eval "$$(scripts/services.sh start $$dir)" &&

# the suite on several workers at once, handed out one at a time, slowest first
# (tests/conftest.py: SLOWEST; tests sharing a costly module fixture, marked xdist_group, go
# to one worker together); tests marked `alone` (they load the machine) after, one at a time
TEST_WORKERS ?= 4
PYTEST_ALONE = { $(BIN)/pytest -m alone; code=$$?; [ $$code = 0 ] || [ $$code = 5 ]; }

# `$(call beside_lint,TESTS)`: the lint runs beside TESTS (its minute of one core is not
# waited for first); its output follows theirs, and either failing fails the target
beside_lint = lint_log=$$(mktemp); { ( $(LINT) ) >$$lint_log 2>&1; echo $$? >$$lint_log.rc; } & \
	{ $(1); }; tests=$$?; \
	wait; cat $$lint_log; linted=$$(cat $$lint_log.rc); rm -f $$lint_log $$lint_log.rc; \
	[ "$$linted" = 0 ] || echo "make: the lint failed (above)"; \
	[ "$$linted" = 0 ] && [ $$tests = 0 ]

test: deps
	@$(call beside_lint,$(SERVICES) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=25 -m "not alone" && $(PYTEST_ALONE))

# the no-browser lane: lint, types, layers and every test that needs no browser, X display,
# PostgreSQL or Redis
check: deps
	@$(call beside_lint,$(BIN)/pytest -n $(TEST_WORKERS) -m "not browser and not server and not desktop")

LINT = $(BIN)/ruff check robots sandbox scheduler tests bench && \
	$(BIN)/ruff format --check robots sandbox scheduler tests bench && \
	$(BIN)/mypy && \
	$(BIN)/lint-imports

lint: deps
	$(LINT)

unit: check

# the reference (docs/) as a site in build/site/; a broken link fails it (mkdocs.yml: strict)
docs: deps
	$(BIN)/mkdocs build

bench: deps bench-deps
	$(BIN)/python bench/refunds.py
	$(BIN)/python bench/flows.py
	$(BIN)/python bench/peers.py
	$(BIN)/python bench/pagescan.py
	$(BIN)/python bench/returns.py
	$(BIN)/python bench/cli_start.py
	@$(SERVICES) $(BIN)/python bench/cluster.py

deps: system-deps $(VENV)/.installed

# Debian packages: installed only when one of their commands is missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromium-headless-shell >/dev/null || missing="$$missing chromium-headless-shell"; \
	command -v Xvfb >/dev/null || missing="$$missing xvfb"; \
	command -v scrot >/dev/null || missing="$$missing scrot"; \
	command -v xdotool >/dev/null || missing="$$missing xdotool"; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

# what only the benchmarks use: Selenium and Debian's ChromeDriver (bench/peers.py)
bench-deps: deps
	@command -v chromedriver >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium-driver >/dev/null; }
	@$(BIN)/python -c "import selenium" 2>/dev/null || $(BIN)/pip install -q --disable-pip-version-check -e '.[dev,bench]'

$(VENV)/.installed: pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
