# nearspace: `make run` shows the main job, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_STORE := .nearspace/demo.db
QUERY := how to reduce overfitting in neural networks

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned (==2.13.0) in pyproject.toml; pip takes the local CPU wheel
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/nearspace --store $(DEMO_STORE) index examples/corpus.jsonl
	$(BIN)/nearspace --store $(DEMO_STORE) search "$(QUERY)" --mode all --k 5

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf .nearspace build *.egg-info src/*.egg-info
