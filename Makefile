# nearspace: `make run` shows the main job, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_STORE := .nearspace/demo.db
QUERY := how to reduce overfitting in neural networks

.PHONY: install browser run test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned (==2.13.0) in pyproject.toml; pip takes the local CPU wheel
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/nearspace --store $(DEMO_STORE) index examples/documents.jsonl
	$(BIN)/nearspace --store $(DEMO_STORE) search "$(QUERY)" --mode all --k 5

# the server's page is tested in Debian's chromium, driven by Playwright (its own browser download is not used)
browser: install
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/python -m pip install -q playwright

test: install browser
	$(BIN)/python -m pip install -q -e ".[test,milvus,ray]"
	# integration extras and the host libraries' standard suites (make run stays on the base install)
	$(BIN)/python -m pip install -q -e ".[langchain,llamaindex,parquet,notebook,integrations-test]"
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf .nearspace build *.egg-info src/*.egg-info
