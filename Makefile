# The two set-up commands are `make run` and `make test`; the rest are for day-to-day work.
VENV := .venv/bin
export PYTHONUNBUFFERED := 1

.PHONY: setup run test down status lint format

setup:
	@bash ops/setup.sh

run: setup
	$(VENV)/intellidox up

test: setup
	$(VENV)/intellidox up
	$(VENV)/pytest

down:
	$(VENV)/intellidox down

status:
	$(VENV)/intellidox status

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

format:
	$(VENV)/ruff format .
	$(VENV)/ruff check --fix .
