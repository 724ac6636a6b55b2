# hyenaflow developer commands. `make help` lists them.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
CONSTRAINTS := requirements/constraints.txt
export PYTHONUNBUFFERED := 1

.PHONY: help venv tools demo test test-fast lint format build validate checkov deploy bench pr clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[lambda,training,endpoint,dev]'
	touch $@

venv: $(VENV)/.installed ## create .venv with every pinned dependency

$(SAM_VENV)/.installed: requirements/sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q -r requirements/sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q -r requirements/checkov.txt
	touch $@

tools: $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## SAM CLI, cfn-lint and checkov (own venvs: their pins clash)

demo: venv ## set up and run the whole flow on the local stack
	$(VENV)/bin/hyenaflow demo

test: venv tools ## set up and run every test, plus template checks
	$(MAKE) validate
	$(PY) -m pytest -q -ra

test-fast: venv ## unit and integration tests, without the slow ones (training runs, subprocesses)
	$(PY) -m pytest -q -ra -m "not slow" tests/unit tests/integration

lint: venv ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv ## ruff format + fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: tools ## sam validate --lint, cfn-lint, checkov on template.yaml
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact -f template.yaml --framework cloudformation --config-file .checkov.yaml

build: tools ## sam build
	$(SAM_VENV)/bin/sam build

deploy: build venv ## sam deploy --guided, then upload the training code bundle
	$(SAM_VENV)/bin/sam deploy --guided
	$(VENV)/bin/hyenaflow upload-training-code

bench: venv ## run the CPU benchmarks (figures and commands: docs/benchmarks.md)
	$(PY) bench/bench_model.py
	$(PY) bench/bench_train_step.py --sizes tiny
	$(PY) bench/bench_loader.py
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_endpoint.py
	$(PY) bench/bench_lambda_cold_import.py

pr: lint test build ## everything CI runs

clean: ## remove build outputs and virtual environments
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam build .pytest_cache .ruff_cache
