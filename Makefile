# Two commands for a newcomer: `make run` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
CONFIG ?= config.yaml

.PHONY: run test lint bench soak venv clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/condorbot run --config $(CONFIG)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -n auto -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict strategies/
	$(BIN)/mypy bot/ bench/

bench: $(TEST_STAMP)
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done
	@echo "== bench/backtest.py --against 5f1ce42 (issue 16's per-path speed-up, same run)"
	@$(BIN)/python bench/backtest.py --against 5f1ce42 --repeats 5 --rounds 4

soak: $(STAMP)
	$(BIN)/condorbot run --scenario chop --speed max --days 250

clean:
	rm -rf $(VENV) build *.egg-info
