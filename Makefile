# Set-up and the two everyday commands. `make fit` and `make test` do all set-up on a fresh
# machine: a virtual environment in .venv with torch, then this package and its test tools.
#
# TORCH chooses the PyTorch build. The default pins the release this project is tested with;
# where a CPU wheel of it is on the local disk (find-links), pip takes that one, elsewhere the
# registry's default build for the machine (CUDA on Linux x86-64, MPS-capable on macOS).
# Override for another build, e.g.  make TORCH='torch --index-url https://download.pytorch.org/whl/cu126'

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: setup fit test test-fast lint tensorboard clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

fit: setup  ## fit the default map (36 European cities); pass options with ARGS='--trainer.max_epochs 100'
	$(BIN)/python -m citymap_lightning fit $(ARGS)

test: setup  ## the test suite (slow tests included)
	$(BIN)/python -m pytest -q -n auto -m "slow or not slow" $(ARGS)

test-fast: setup  ## the test suite without the slow seed sweeps
	$(BIN)/python -m pytest -q -n auto -m "not slow" $(ARGS)

lint: setup
	$(BIN)/ruff check citymap_lightning tests benchmarks scripts
	$(BIN)/ruff format --check citymap_lightning tests benchmarks scripts

tensorboard: setup  ## open TensorBoard on the runs under ./lightning_logs
	$(BIN)/tensorboard --logdir lightning_logs

clean:
	rm -rf $(VENV) lightning_logs .pytest_cache
