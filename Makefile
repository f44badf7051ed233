# `make demo` and `make test` work on a fresh machine that has only python3:
# they create .venv, install a CPU build of PyTorch and ganforge with its extras, then run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The dev/CI pin: a CPU build (an unpinned torch would pull several GB of CUDA packages).
# The library itself only asks for torch>=2.6.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.ganforge-setup

.PHONY: setup demo test test-slow clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

## demo: train the DCGAN on the embedded MNIST digits (a few CPU minutes), then score it with
## the shipped mnist-clf evaluator; samples, metrics and the generator land in runs/
demo: $(STAMP)
	$(PY) -m ganforge train --preset dcgan-mnist
	$(PY) -m ganforge eval "$$(ls -d runs/[0-9]*-dcgan-mnist | tail -n 1)" --evaluator mnist-clf --n 10000

## test: the test suite (fast CPU tests; slow ones need GANFORGE_SLOW=1)
test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	GANFORGE_SLOW=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
