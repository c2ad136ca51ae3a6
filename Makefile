# Two commands for a new user (README): `make demo` and `make test`.
# Each creates or updates .venv, installs what it needs, then runs.
PYTHON ?= python3
VENV ?= .venv
# CPU build on this kind of machine; for CUDA: make test TORCH_SPEC=torch (PyPI's Linux wheel is a CUDA build)
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: venv install demo test test-all bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

install: venv
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[all,test]"

demo: install
	$(BIN)/tunepath recommend examples/acme-support.yaml
	$(BIN)/tunepath run examples/acme-support.yaml --yes

# two xdist workers: the suite is sized for a 2-core machine (tests/conftest.py: a module per worker)
test: install
	$(BIN)/python -m pytest -q -n 2

test-all: install
	$(BIN)/python -m pytest -q -n 2 -m ""

# Every benchmark writes bench/results/<name>.json (bench/results.py); docs/benchmarks.md is built from them.
BENCHES ?= cli_latency estimator_accuracy host_ops estimator_published local_plan rag_throughput rag_ann_fallback rag_scifact rag_tune ray_scaling
# train_throughput runs three ways: 1 thread (steadiest on a shared machine), 2 threads, and a learning run
# (longer pretraining and 3 epochs, one repeat: its loss is the figure, so its speed ratio does not gate).
TRAIN_CONTENDERS = pad-grouped,tunepath,tp-varlen,trl-bfd
bench: install
	$(BIN)/pip install -q -e ".[bench]"  # peers the benchmarks compare against (TRL)
	@set -e; for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py; done
	$(BIN)/python bench/train_throughput.py --threads 1
	$(BIN)/python bench/train_throughput.py --threads 2 --contenders $(TRAIN_CONTENDERS) --name train_throughput_2t
	-$(BIN)/python bench/train_throughput.py --threads 2 --examples 400 --pretrain-steps 800 --epochs 3 --repeats 1 \
		--contenders $(TRAIN_CONTENDERS) --name train_learning
	$(BIN)/python bench/make_docs.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
