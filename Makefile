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

messages: install
	$(PY) manage.py makemessages -l ru -l en --no-obsolete -i ".venv/*" -i "tests/*"
	$(PY) manage.py compilemessages -i ".venv"
