# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Use the local CPU wheel of torch when this machine has it (see constraints/).
LOCAL_TORCH_WHEEL := $(wildcard /opt/wheels/torch-2.13.0*cpu*.whl)
CONSTRAINTS ?= $(if $(LOCAL_TORCH_WHEEL),constraints/local-cpu-torch.txt,)
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
RUN_DIR ?= runs/main
PYTEST_ARGS ?=

.PHONY: setup run test bench data clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(wildcard constraints/*.txt)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]" $(PIP_C)
	touch $@

## run: simulate a year of P2PTrading-v0 under every clearing mechanism and compare
run: setup
	$(PY) -m prosumer_gym.eval.compare_mechanisms --out $(RUN_DIR)

## test: the test suite
test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

## bench: speed and quality benchmarks (figures in the README)
bench: setup
	$(PY) benchmarks/bench_p2p_clearing.py --days 20 --sizes 5,15,20
	$(PY) benchmarks/bench_p2p_env.py

## data: rebuild the shipped dataset from the source wheels (needs the package registry)
data: setup
	$(PY) scripts/build_data.py

clean:
	rm -rf $(VENV) .pytest_cache
