.PHONY: run test lint

# Install everything and run the app (web, Celery worker, beat) on embedded defaults.
run:
	bash scripts/run.sh

# Install what the tests need and run the whole suite.
test:
	bash scripts/test.sh $(PYTEST_ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
