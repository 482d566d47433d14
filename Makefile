# Two commands set everything up: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet -c constraints.txt
OUT    ?= demo-output

# One stamp per install level, so that `make test` after `make demo` adds only the rest.
# The demo needs inversa and its core dependencies alone; the extras (astra-toolbox pulls
# ~380 MB of CUDA libraries even on a CPU machine) are for the tests and benchmarks.
DEMO_STAMP := $(VENV)/.inversa-demo-installed
FULL_STAMP := $(VENV)/.inversa-installed

.PHONY: demo test test-all bench lint install install-demo clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP) -e .
	touch $@

$(FULL_STAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP) -e ".[all,dev]"
	touch $@ $(DEMO_STAMP)

install-demo: $(DEMO_STAMP)

install: $(FULL_STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/inversa demo --out $(OUT) --force

test: $(FULL_STAMP)
	$(VENV)/bin/python -m pytest -q

test-all: $(FULL_STAMP)
	$(VENV)/bin/python -m pytest -q -m ""

# Every benchmark at full size (long); one at a time: make bench BENCH=tomography
BENCH ?= $(shell $(PY) -c "from inversa.bench import available_benchmarks as a; print(*a())" 2>/dev/null)
bench: $(FULL_STAMP)
	for name in $(BENCH); do \
	  $(VENV)/bin/inversa bench $$name --json benchmarks/results/$$name.json --force || exit 1; \
	done

lint: $(FULL_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
