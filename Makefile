# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORTAL_PORT ?= 8000
PORTAL_DATA_DIR ?= ./var
export PORTAL_PORT PORTAL_DATA_DIR

.PHONY: install chromium axe fuzz-env run test lint imports typecheck check-migrations schema lock clean screenshots

# The environment is rebuilt whenever the lock file changes.
$(BIN)/.installed: requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	@touch $@

install: $(BIN)/.installed

# portal.run starts the Procfile's processes, prints the addresses and the demo login once the
# portal answers (seed_demo), and records the data folder for later manage.py commands. `exec`
# makes it make's own child, so the SIGTERM make passes on reaches it and it stops the rest.
run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	exec $(BIN)/python -m portal.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The layers' import contracts ([tool.importlinter] in pyproject.toml).
imports: install
	$(BIN)/lint-imports

# The engine and the connectors are type-checked ([tool.mypy] in pyproject.toml).
typecheck: install
	$(BIN)/mypy

check-migrations: install
	PORTAL_DATA_DIR=$$(mktemp -d) $(BIN)/python manage.py makemigrations --check --dry-run

# The browser tests drive Debian's Chromium; Playwright's own browser download is never used.
# As root it is installed when missing; anyone else is told the one command that installs it.
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Debian's Chromium for the browser tests (apt-get install chromium)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
				|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }; \
		else \
			echo "The browser tests need Debian's Chromium at $(CHROMIUM)."; \
			echo "Install it with: sudo apt-get install chromium   (then run make test again)"; \
			exit 1; \
		fi; \
	fi

# Schemathesis gets its own environment outside the project, where the project's `requests` app
# cannot shadow the library; built once per tests/fuzz/requirements.lock (needs PyPI that once).
fuzz-env: install
	$(BIN)/python tests/fuzz/environment.py

# axe-core for the accessibility browser test, from the npm registry at the version locked in
# tests/browser/axe/package-lock.json (npm comes from Debian: apt-get install npm).
AXE := tests/browser/axe/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE): tests/browser/axe/package-lock.json
	@command -v npm >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y npm \
				|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y npm; }; \
		else \
			echo "The accessibility test needs npm: sudo apt-get install npm (then make test)"; \
			exit 1; \
		fi; }
	npm ci --prefix tests/browser/axe --no-audit --no-fund --loglevel error
	@touch $@

test: lint imports typecheck check-migrations chromium axe fuzz-env
	$(BIN)/pytest

# The README's pictures of the console (docs/screenshots/), taken by the browser tests at the
# steps they check, so they show what the tests prove.
screenshots: install chromium
	PORTAL_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/browser -q

# Regenerate requirements.lock after editing pyproject.toml (needs network access to PyPI).
lock:
	$(PYTHON) -m venv /tmp/portal-uv && /tmp/portal-uv/bin/pip install --quiet uv
	/tmp/portal-uv/bin/uv pip compile pyproject.toml --extra dev --generate-hashes \
		--python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf $(VENV)
