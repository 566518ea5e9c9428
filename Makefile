# blackprop: `make demo` (set up, fetch MNIST, train sum2 with ISED) and `make test`.
# `make setup` installs torch, the package and its [dev] extra (what the demo and the tests need);
# other extras on request: `make setup EXTRAS=dev,plots` or `make setup-all` (plots, embedding, distributed, docs, browser);
# `make docs` installs the docs extra itself.
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
EXTRAS ?= dev
ALL_EXTRAS := dev,plots,embedding,distributed,docs,browser
comma := ,
DOCS_EXTRAS := dev,docs
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: setup setup-all demo test test-all test-browser lint layer-speed docs explain

setup: $(STAMP)

setup-all:
	$(MAKE) setup EXTRAS=$(ALL_EXTRAS)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e ".[$(EXTRAS)]"
	touch $@

demo: setup
	$(VENV)/bin/blackprop train sum2 --method ised --epochs 3 --train-size 5000 --test-size 500 --seed 0

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ""

test-browser: setup
	BLACKPROP_REQUIRE_BROWSER=1 $(PY) -m pytest -q -m browser

docs:
	$(MAKE) setup EXTRAS=$(if $(findstring docs,$(EXTRAS)),$(EXTRAS),$(DOCS_EXTRAS))
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

explain: setup
	$(VENV)/bin/blackprop explain --port 8000

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

layer-speed: setup
	$(PY) benchmarks/layer_speed.py
