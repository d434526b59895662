# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORTAL_PORT ?= 8000
PORTAL_DATA_DIR ?= ./var
export PORTAL_PORT PORTAL_DATA_DIR

.PHONY: install run test lint check-migrations schema lock clean

# The environment is rebuilt whenever the lock file changes.
$(BIN)/.installed: requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	@touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	$(BIN)/python manage.py seed_demo
	$(BIN)/honcho --procfile Procfile start

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-migrations: install
	PORTAL_DATA_DIR=$$(mktemp -d) $(BIN)/python manage.py makemigrations --check --dry-run

test: lint check-migrations
	$(BIN)/pytest

# Regenerate requirements.lock after editing pyproject.toml (needs network access to PyPI).
lock:
	$(PYTHON) -m venv /tmp/portal-uv && /tmp/portal-uv/bin/pip install --quiet uv
	/tmp/portal-uv/bin/uv pip compile pyproject.toml --extra dev --generate-hashes \
		--python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf $(VENV)
