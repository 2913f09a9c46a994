# The same commands locally and in CI. `make help` lists them.
UV := python -m uv
.PHONY: help setup demo test lint format typecheck bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup:  ## install the locked environment (.venv) with the dev tools
	python -m pip install --quiet uv && $(UV) sync --frozen --extra dev

demo:  ## run the whole pipeline on the demo organisation (DuckDB + local Parquet)
	python -m pip install --quiet uv && $(UV) run --frozen esn demo

test:  ## the whole test suite, as CI runs it
	bash scripts/test.sh

lint:  ## ruff lint
	.venv/bin/ruff check pipelines dags tests bench

format:  ## ruff format
	.venv/bin/ruff format pipelines dags tests bench

typecheck:  ## mypy on the package
	.venv/bin/mypy pipelines

bench:  ## the benchmark at 20k people / 10M events; writes bench/results/
	$(UV) run --frozen python bench/pipeline_bench.py --people 20000 --events 10000000

clean:  ## remove local outputs
	rm -rf output bench/work .pytest_cache
