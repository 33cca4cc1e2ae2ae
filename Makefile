# chopay developer and operator commands. Only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PKGS := chopay qr payments merchants disbursement

.PHONY: run test lint typecheck bench mutation install clean translations demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

install: $(STAMP)

## run: install, migrate, create keys and the first admin, then serve on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/chopay init
	$(BIN)/chopay serve

## demo: seed a demo in var/demo (a market, a paid batch, a reconciliation) and serve it with the bank simulator
DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/chopay demo $(DEMO_ARGS)

## test: lint, type-check and run the whole test suite
test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

## bench: run every benchmark; each prints its figures as JSON
bench: $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@for b in bench/*.py; do case $$b in */_*|*/ledger_offline.py) continue;; esac; echo "== $$b"; $(BIN)/python $$b || exit 1; done

## mutation: mutation-test MODULES (default: every module in tests/mutation/mutation.toml); prints JSON
MUTATION_ARGS ?= -j 2
mutation: $(TEST_STAMP)
	$(BIN)/python -m tests.mutation $(or $(MODULES),--all) $(MUTATION_ARGS)

## translations: collect the pages' strings into the catalogues (fill in vi's messages.po), compile them
translations: $(TEST_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l --no-location --sort-output -o chopay/translations/messages.pot chopay payments disbursement merchants
	$(BIN)/pybabel update -i chopay/translations/messages.pot -d chopay/translations --no-fuzzy-matching --ignore-obsolete --width 110
	$(BIN)/pybabel compile -d chopay/translations --statistics

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
