# The README's two commands: `make run` (one cycle on embedded defaults) and `make test` (linters + tests).
# Each creates .venv on first use and reinstalls when pyproject.toml changes.
#
# torch is installed first, on its own, from TORCH_SPEC; everything else is then installed with torch pinned to
# whatever that gave, so no other package can pull a different (e.g. multi-GB CUDA) build. Override TORCH_SPEC to
# choose a build, e.g. `make run TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"`.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean system-packages

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "autoloop needs Python 3.11 or newer; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q $(TORCH_SPEC)
	$(BIN)/python -c 'import importlib.metadata as m; print("torch==" + m.version("torch"))' > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q -c $(VENV)/torch-constraint.txt -e ".[dev]"
	touch $@

run: $(STAMP)
	$(BIN)/autoloop cycle $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint system-packages
	$(BIN)/pytest $(ARGS)

# What the tests start or drive besides Python packages, from Debian: Chromium (the viewer's browser tests;
# Playwright never downloads a browser), PostgreSQL (the servers' database) and docker-compose (validates
# infra/compose.yaml). Installed here when missing and running as root with apt; otherwise the tests that need them
# skip and say how to install them.
DEBIAN_PACKAGES := chromium:/usr/bin/chromium postgresql:/usr/lib/postgresql docker-compose:/usr/bin/docker-compose

system-packages:
	@missing=""; for entry in $(DEBIAN_PACKAGES); do \
		[ -e "$${entry#*:}" ] || missing="$$missing $${entry%%:*}"; \
	done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
		echo "note: missing$$missing, so the tests that need them will skip; install: sudo apt-get install -y$$missing"; \
	fi

clean:
	rm -rf $(VENV) .autoloop .pytest_cache .mypy_cache .ruff_cache
