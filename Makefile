# Two entry points on a fresh clone: `make demo` and `make test`. Each makes its own virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo test lint screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/qqgate demo --port $(PORT)

test: $(BIN)/.installed
	bash tools/system-deps.sh
	$(BIN)/ruff check qqgate tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Re-take the README's screenshots (docs/*.png) in the real browser; look at them before committing.
screenshots: $(BIN)/.installed
	UPDATE_DOCS_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/test_browser.py

lint: $(BIN)/.installed
	$(BIN)/ruff check qqgate tests bench
	$(BIN)/ruff format --check qqgate tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-artifacts
