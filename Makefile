# The portal's commands; see README.md. Everything runs from .venv, created on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=
# Parallel test processes; tests marked serial (shared broker state) run afterwards.
TEST_WORKERS ?= 2

.PHONY: install run test lint format bench messages

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	PORT=$(PORT) $(PY) scripts/run_portal.py

test: install
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not serial" $(PYTEST_ARGS)
	$(VENV)/bin/pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: install
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) tests/benchmarks/run.py

# English is the source language, so its catalogue repeats every msgid (msgen);
# Russian strings new since the last run are left empty for a translator, and
# tests/registry/test_i18n.py fails until they are translated and compiled.
messages: install
	$(PY) manage.py makemessages -l ru -l en --no-obsolete -i ".venv/*" -i "tests/*" -i "var/*"
	msgattrib --clear-fuzzy --empty --clear-previous locale/en/LC_MESSAGES/django.po \
		| msgen -o locale/en/LC_MESSAGES/django.po -
	$(PY) manage.py compilemessages -i ".venv" -i "var"
