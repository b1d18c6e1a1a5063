# The README's two commands: `make quickstart` and `make test`. Each sets up .venv on its own first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: quickstart test install install-test lint format docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"

quickstart: install
	$(BIN)/corpusforge run recipes/quickstart.yaml --overwrite
	$(BIN)/corpusforge inspect out/quickstart --rows 2

test: install-test
	$(BIN)/ruff check corpusforge tests benchmarks
	$(BIN)/ruff format --check corpusforge tests benchmarks
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check corpusforge tests benchmarks

format: install-test
	$(BIN)/ruff format corpusforge tests benchmarks
	$(BIN)/ruff check --fix corpusforge tests benchmarks

docs: install
	$(BIN)/python -m corpusforge.recipe.docs > docs/recipes.md

bench: install-test
	$(BIN)/python benchmarks/bench_lid.py

clean:
	rm -rf out .pytest_cache .ruff_cache
