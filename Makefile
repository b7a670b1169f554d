# The README's two commands: `make demo` (run) and `make test` (tests). Each sets itself up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.requirements.txt

.PHONY: demo test setup lint

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	# Datumaro (tests only) declares opencv<5 and pillow~=12 but runs with our pins: no resolver for it.
	$(VENV)/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	cat requirements.txt requirements-nodeps.txt > $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python manage.py demo $(ARGS)

test: $(STAMP)
	bin/test $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check labelhub workers tests benchmarks
