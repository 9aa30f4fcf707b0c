# Two commands do all the set-up on a fresh machine:
#   make demo   ingest the sample corpus with the bundled offline models and answer a question
#   make test   run the whole test suite
VENV ?= .venv
PYTHON ?= python3
# A CPU build of torch (a plain "torch" requirement would pull a multi-GB CUDA build).
# On this project's machines torch==2.13.0 is a local wheel; elsewhere, e.g.:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
BIN = $(VENV)/bin
DEMO_HOME ?= $(CURDIR)/.demo-home
DEMO_ENV = RAGCHAT_HOME=$(DEMO_HOME) RAGCHAT_EMBEDDING_MODEL=bundled RAGCHAT_MODEL=bundled

.PHONY: setup demo test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e '.[bundled,dev,ocr]'
	touch $@

demo: setup
	$(DEMO_ENV) $(BIN)/ragchat ingest corpora/harbor
	$(DEMO_ENV) $(BIN)/ragchat ask "How much energy did the solar array produce in 2024?"

test: setup
	$(BIN)/ruff check ragchat tests bench
	$(BIN)/ruff format --check ragchat tests bench
	$(BIN)/mypy ragchat
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check ragchat tests bench
	$(BIN)/ruff format --check ragchat tests bench
	$(BIN)/mypy ragchat

clean:
	rm -rf $(VENV) $(DEMO_HOME)
