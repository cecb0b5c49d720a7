# k8sdm: `make run` starts the whole product, `make test` runs the suite. Nothing to install first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Where make run keeps its data (PostgreSQL, NATS, the emulator's objects, the admin password).
DATA_DIR := $(or $(K8SDM_DATA_DIR),.data)

.PHONY: run test bench venv migrate check clean-data

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# the repo on the venv's path, so `pytest` and `python -m devstack` work from any directory
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'k8sdm-dev.pth').write_text('$(CURDIR)\n')"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devstack

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m tests.bench $(BENCH_ARGS)

check: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run

# Refused while a make run uses the directory (it writes its pid there).
clean-data:
	@pid=$$(cat "$(DATA_DIR)/devstack.pid" 2>/dev/null); \
	if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; then \
	  echo "make run (pid $$pid) is using $(DATA_DIR): stop it (Ctrl-C) first"; exit 1; fi
	rm -rf "$(DATA_DIR)"
