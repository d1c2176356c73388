# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Use the local CPU wheel of torch when this machine has it (see constraints/).
LOCAL_TORCH_WHEEL := $(wildcard /opt/wheels/torch-2.13.0*cpu*.whl)
CONSTRAINTS ?= $(if $(LOCAL_TORCH_WHEEL),constraints/local-cpu-torch.txt,)
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
RUN_DIR ?= runs/main
PYTEST_ARGS ?= -n 2  # both cores (pytest-xdist, in the dev extra); `make test PYTEST_ARGS=` runs serially
# dev: pytest & co; rllib: Ray RLlib (the scale-out tests run in CI, see docs/scale_out.md).
# `make EXTRAS=dev` skips Ray (its tests then skip with a reason).
EXTRAS ?= dev,rllib

.PHONY: setup run test bench data clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(wildcard constraints/*.txt) Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]" $(PIP_C)
	touch $@

## run: PQR and ProDQN sellers learn a year of P2PTrading-v0, then are compared with Rule and Zhu
## (comparison table, TensorBoard logs and PNG plots in $(RUN_DIR)); then the P2PTrading
## leaderboard track: every reference and the shipped deep-RL baselines (evaluated, not
## retrained) on the held-out households and the first 10 held-out seeds, scored
## ($(RUN_DIR)/LEADERBOARD.md, $(RUN_DIR)/leaderboard/site/index.html)
run: setup
	$(PY) -m prosumer_gym.eval.main_job --out $(RUN_DIR)
	$(PY) -m prosumer_gym.eval.leaderboard rebuild --envs P2PTrading-v0 --workers 2 --n-seeds 10 --no-progress \
	    --results $(RUN_DIR)/leaderboard/results.jsonl --md $(RUN_DIR)/LEADERBOARD.md --site $(RUN_DIR)/leaderboard/site

## test: the test suite
test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

## bench: speed and quality benchmarks (figures in the README)
bench: setup
	$(PY) benchmarks/bench_envs.py --out runs/bench/envs.json
	$(PY) benchmarks/bench_p2p_clearing.py --real --days 30 --sizes 5,15,20 --out runs/bench/clearing_real.json
	$(PY) benchmarks/bench_p2p_env.py --out runs/bench/env.json
	for b in benchmarks/bench_storage_sharing.py benchmarks/bench_prosumer_sharing.py benchmarks/bench_energy_collective.py \
	         benchmarks/bench_p2p_recommendation.py benchmarks/bench_euber.py; do $(PY) $$b || exit 1; done
	$(PY) benchmarks/bench_rllib.py --repeats 5 --out runs/bench/rllib_sampling.json

## data: rebuild the shipped dataset from the source wheels (needs the package registry)
data: setup
	$(PY) scripts/build_data.py

clean:
	rm -rf $(VENV) .pytest_cache
