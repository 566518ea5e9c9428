# blackprop: `make demo` (set up, fetch MNIST, train sum2 with ISED) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test test-all test-browser lint layer-speed docs explain

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,plots,embedding,distributed,docs,browser]"
	touch $@

demo: setup
	$(VENV)/bin/blackprop train sum2 --method ised --epochs 3 --train-size 5000 --test-size 500 --seed 0

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ""

test-browser: setup
	BLACKPROP_REQUIRE_BROWSER=1 $(PY) -m pytest -q -m browser

docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

explain: setup
	$(VENV)/bin/blackprop explain --port 8000

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

layer-speed: setup
	$(PY) benchmarks/layer_speed.py
