# The two commands a newcomer needs: `make demo` and `make test`.
# Python 3.11 to 3.13 (Django 5.2 runs on 3.10-3.13; pyproject.toml says what omni needs).
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))

.PHONY: demo test lint format install bench clean browser screenshots

# A .venv made by a Python omni does not support (or whose Python is gone) is made anew.
$(STAMP): pyproject.toml
	@if [ -e $(VENV) ] && ! $(BIN)/python -c '$(SUPPORTED)' 2>/dev/null; then \
		echo "$(VENV) was made by a Python omni does not support: making it anew with $(PYTHON)"; \
		rm -rf $(VENV); fi
	@$(PYTHON) -c '$(SUPPORTED)' || { echo "omni needs Python 3.11 to 3.13; $(PYTHON) is not one: set PYTHON=..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p var
	DEBUG=true $(BIN)/python manage.py migrate --noinput
	DEBUG=true $(BIN)/python manage.py demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The admin's browser tests drive Debian's chromium; installed here when root can (CI), else
# those tests are skipped with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		>/dev/null; } || echo "chromium is not installed: the browser tests will be skipped"

# Uses DATABASE_URL when set; otherwise PostgreSQL on 127.0.0.1:5432 when it answers; otherwise SQLite.
test: lint browser
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run > /dev/null
	DATABASE_URL="$$($(BIN)/python tests/select_database.py)" $(BIN)/pytest

# PNGs of the main admin screens (docs/screenshots/), from the demo loaded into a scratch database.
screenshots: $(STAMP) browser
	mkdir -p var
	rm -f var/screenshots.sqlite3
	DEBUG=true DATABASE_URL=sqlite:///var/screenshots.sqlite3 $(BIN)/python manage.py migrate --noinput -v0
	DEBUG=true DATABASE_URL=sqlite:///var/screenshots.sqlite3 $(BIN)/python manage.py screenshots

clean:
	rm -rf $(VENV) var .ruff_cache
