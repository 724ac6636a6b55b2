# hyenaflow developer commands. `make help` lists them.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
# What `make deploy` runs besides SAM: boto3 + sagemaker-core + the hyenaflow CLI, no torch.
DEPLOY_VENV := .venv-deploy
DEPLOY_PARAMETERS := .aws-sam/deploy-parameters.yaml
# The containers (hyenaflow/images.py) and the Lambda functions (template.yaml) run Python 3.12:
# `make build` and the 3.12 checks use it.
# pyenv machines (this project's CI) keep 3.12 beside the default 3.11, off PATH: look there first.
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
PY312_VENV := .venv-py312
CONSTRAINTS := requirements/constraints.txt
export PYTHONUNBUFFERED := 1

.PHONY: help venv tools demo test test-fast test-py312 lint format build validate checkov deploy bench pr clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[lambda,training,endpoint,dev,deploy,sdk]'
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

$(DEPLOY_VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install -q -c $(CONSTRAINTS) -e '.[deploy]'
	touch $@

$(PY312_VENV)/.installed: requirements/py312.txt functions/requirements.txt
	$(PYTHON312) -m venv $(PY312_VENV)
	$(PY312_VENV)/bin/pip install -q -r requirements/py312.txt
	touch $@

demo: venv ## set up and run the whole flow on the local stack
	$(VENV)/bin/hyenaflow demo

test: venv tools ## set up and run every test, plus template checks and the Python 3.12 checks
	$(MAKE) validate
	$(PY) -m pytest -q -ra
	$(MAKE) test-py312

test-py312: ## the Lambda handlers and the containers' torch-free code on Python 3.12 (docs/deploy.md)
	@if $(PYTHON312) -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then \
		$(MAKE) $(PY312_VENV)/.installed && $(PY312_VENV)/bin/python -m pytest -q -ra -p no:cacheprovider tests/py312; \
	else echo "test-py312: no Python 3.12 at '$(PYTHON312)'; the Python 3.12 checks did NOT run (make test-py312 PYTHON312=/path/to/python3.12)"; fi

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

# The functions run on Lambda's python3.12 (template.yaml; why: docs/deploy.md, prerequisites).
# `sam build` looks for an executable named python3.12 on PATH to install the packages for that
# runtime, hence the link to $(PYTHON312) under that name first on PATH.
# Lambda cannot write __pycache__ into its read-only /var/task, and `sam build` ships no .pyc, so
# without this step every cold start compiles boto3, Powertools and pydantic from source (~0.6 s of
# CPU per handler, bench/bench_lambda_cold_import.py). unchecked-hash: the .pyc are used whatever the
# zip does to file times. They are compiled by Python 3.12, the functions' runtime, as they must be.
# numpy comes in only as Biopython's declared dependency; no Lambda imports it (the GenBank/EMBL
# scanner does not; tests/unit/test_ingest_imports.py), so it is dropped from the Biopython layer
# (65 MB), the only place pip puts it.
build: tools ## sam build (python3.12 runtime), then byte-compile the function packages and the Biopython layer
	@$(PYTHON312) -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 || { \
		echo "make build: the Lambda runtime is python3.12 and '$(PYTHON312)' is not Python 3.12 (make build PYTHON312=/path/to/python3.12)"; exit 1; }
	mkdir -p .aws-sam/python312 && ln -sf "$$(command -v $(PYTHON312))" .aws-sam/python312/python3.12
	PATH="$(CURDIR)/.aws-sam/python312:$$PATH" $(SAM_VENV)/bin/sam build
	rm -rf .aws-sam/build/BiopythonLayer/python/numpy .aws-sam/build/BiopythonLayer/python/numpy.libs .aws-sam/build/BiopythonLayer/python/numpy-*.dist-info
	$(PYTHON312) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build > /dev/null

deploy: build $(DEPLOY_VENV)/.installed ## sam deploy --guided with the Region's container images, then upload the training code
	$(DEPLOY_VENV)/bin/hyenaflow deploy-parameters --out $(DEPLOY_PARAMETERS) --parameter-overrides '$(PARAMETER_OVERRIDES)'
	$(SAM_VENV)/bin/sam deploy --guided --parameter-overrides file://$(CURDIR)/$(DEPLOY_PARAMETERS)
	$(DEPLOY_VENV)/bin/hyenaflow upload-training-code

bench: venv ## run the CPU benchmarks (figures and commands: docs/benchmarks.md)
	$(PY) bench/bench_model.py
	$(PY) bench/bench_train_step.py --sizes tiny
	$(PY) bench/bench_loader.py
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_endpoint.py
	$(PY) bench/bench_lambda_cold_import.py

pr: lint test build ## everything CI runs

clean: ## remove build outputs and virtual environments
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(DEPLOY_VENV) $(PY312_VENV) .aws-sam build .pytest_cache .ruff_cache
