# Two commands work on a fresh machine: `make demo` and `make test`.
VENV  ?= .venv
PY    := $(VENV)/bin/python
# The CPU wheel on this machine; on a GPU machine: make install TORCH=torch
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install test demo bench clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,app,study]"
	$(PY) -m textok assets fetch
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: install
	$(PY) -m textok demo --out demo_out

bench: install
	$(PY) benchmarks/bench_tokenizer.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
