# `make demo` and `make test` work from a fresh clone with only Python 3.11 and the package registry.
# TORCH_SPEC is installed first: an unpinned torch pulls gigabytes of CUDA wheels. Elsewhere, override it:
#   make test TORCH_SPEC="torch>=2.4"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgeplan-installed

.PHONY: setup demo test test-all bench lint docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[torch,test,minlp,cluster,export,flower,docs]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/edgeplan demo

test: setup
	$(PY) -m pytest -q -n auto

test-all: setup
	$(PY) -m pytest -q -n auto -m ""

bench: setup
	$(PY) benchmarks/run.py

docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: setup
	$(VENV)/bin/ruff check edgeplan tests benchmarks

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache
