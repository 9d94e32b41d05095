# spinv: two commands on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: demo test venv lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e .
	touch $(STAMP)

$(TSTAMP): $(STAMP)
	$(PIP) install --quiet -e ".[test]"
	touch $(TSTAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spinv demo --out runs/demo

test: $(TSTAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2

lint: $(TSTAMP)
	$(PY) -m ruff check src tests benchmarks tools

bench: $(STAMP)
	for b in operators variational bilevel learned nonexpansive; do \
		$(PY) benchmarks/$$b.py || exit 1; \
	done
	$(PY) benchmarks/anchors/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache
