# fer_lightning: `make demo` trains on the embedded synthetic faces, `make test` runs the suite.
# The first target you run creates .venv and installs the package (torch 2.14.1 / torchvision 0.29.1).
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# the reference the vendored MTCNN is tested against; --no-deps: facenet-pytorch 2.6's metadata pins torch<2.3
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps 'facenet-pytorch==2.6.0'
	touch $(STAMP)

.PHONY: install demo test test-fast golden lowest-deps wheel-check lint tensorboard device-prep clean help

install: $(STAMP) ## create .venv and install the package with its dev tools

demo: $(STAMP) ## train the report's CNN on synthetic faces for a few epochs (~2 min on 2 CPU cores)
	$(PY) -m fer_lightning.train experiment=demo

# one pytest-xdist worker per core, a test file per worker at a time (its fixtures built once): on 2 cores the
# suite took 321 s against 491 s in one process (docs/performance.md)
PYTEST := $(PY) -m pytest -q -n auto --dist loadfile

test: $(STAMP) ## run the whole test suite, what CI runs (synthetic fixtures, tiny shapes, fast_dev_run)
	$(PYTEST) --durations=15

test-fast: $(STAMP) ## the edit loop: every test but the end-to-end subprocess ones (marked slow)
	$(PYTEST) -m "not slow"

lowest-deps: ## install every direct dependency at its lower bound (uv, build/venv-lowest) and run the fast tests; part of CI
	bash .ci/lowest_deps.sh

golden: $(STAMP) ## rewrite tests/golden/<experiment>.yaml (the composed configs) after an intended recipe change
	$(PY) tests/test_golden_configs.py --update

wheel-check: ## build the wheel, install it into a fresh venv, train (fast_dev_run) and predict outside the checkout
	bash .ci/wheel_check.sh

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check fer_lightning tests benchmarks docs

# what benchmarks/device_ablations.sh carries to the GPU machine (its image lacks Hydra); pure-Python wheels
DEVICE_WHEELS := hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 hydra-joblib-launcher==1.2.0
DATA ?= ../shared/data/fer2013/fer2013.csv.gz

device-prep: $(STAMP) ## pack FER-2013 (DATA=...) and Hydra's wheels into outputs/carry/ for benchmarks/device_ablations.sh
	$(PY) -m fer_lightning.data.pack $(DATA) outputs/carry/fer2013.npz
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps -w outputs/carry/wheels $(DEVICE_WHEELS)

tensorboard: $(STAMP) ## open TensorBoard on every run under outputs/
	$(VENV)/bin/tensorboard --logdir outputs --port 6006

clean: ## remove run outputs and caches (keeps .venv)
	rm -rf outputs/runs outputs/multiruns outputs/evaluations outputs/predictions outputs/cache .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'
