# Two commands set everything up: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.inversa-installed
OUT    ?= demo-output

.PHONY: demo test test-all bench lint install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/inversa demo --out $(OUT) --force

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m ""

# Every benchmark at full size (long); one at a time: make bench BENCH=tomography
BENCH ?= $(shell $(PY) -c "from inversa.bench import available_benchmarks as a; print(*a())" 2>/dev/null)
bench: $(STAMP)
	for name in $(BENCH); do \
	  $(VENV)/bin/inversa bench $$name --json benchmarks/results/$$name.json --force || exit 1; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
