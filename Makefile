# blackprop: `make demo` (set up, fetch MNIST, train sum2 with ISED) and `make test`.
# `make setup` installs torch, the package and its [dev] extra (what the demo and the tests need);
# other extras on request: `make setup EXTRAS=dev,plots` or `make setup-all` (plots, embedding, distributed).
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
EXTRAS ?= dev
ALL_EXTRAS := dev,plots,embedding,distributed
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: setup setup-all demo test test-all lint layer-speed

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

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

layer-speed: setup
	$(PY) benchmarks/layer_speed.py
