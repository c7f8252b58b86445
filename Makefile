# Two entry points on a fresh clone: `make demo` and `make test`. Each makes its own virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/qqgate demo --port $(PORT)

test: $(BIN)/.installed
	$(BIN)/ruff check qqgate tests
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check qqgate tests
	$(BIN)/ruff format --check qqgate tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
