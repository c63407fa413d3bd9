# audiomatrix: `make setup && make matrix` runs the pipeline on the CI selection;
# `make test` runs the fast tests; `make ci` is what .ci/run runs.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
MATRIX ?= matrix.yaml
SELECT ?= ci
# Use the machine's Python; never download one.
export UV_PYTHON_DOWNLOADS := never
# uv from PATH, else the one `make setup` installs with pip.
UV := $(if $(shell command -v uv),uv,python3 -m uv)

.PHONY: setup system engine test test-lock test-site test-smoke test-image test-conda test-fault test-boundary test-wheels lint report publish ci matrix lock cells doctor bench clean

setup: ## uv if missing, .venv, the project and its dev tools, compiled to bytecode
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@test -x $(BIN)/python || $(UV) venv --quiet $(VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	@# Bytecode written now, so that every later command starts without compiling its imports
	@# (a shell with PYTHONDONTWRITEBYTECODE set would otherwise compile them on every run).
	$(BIN)/python -m compileall -q src

system: ## Debian's docker.io, debootstrap, chromium and docker-registry, where missing (root)
	@missing=""; \
	command -v dockerd >/dev/null 2>&1 || missing="$$missing docker.io"; \
	command -v debootstrap >/dev/null 2>&1 || missing="$$missing debootstrap"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v docker-registry >/dev/null 2>&1 || missing="$$missing docker-registry"; \
	if [ -n "$$missing" ]; then \
		test "$$(id -u)" = 0 || { echo "system: install$$missing (needs root)"; exit 1; }; \
		echo "system: apt-get update (the package lists)"; \
		apt-get update -q -o Dpkg::Use-Pty=0 && \
		echo "system: installing$$missing from Debian's archive (about 90 s on a bare machine)" && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 $$missing; \
	fi

engine: system ## a running Docker Engine (started as root when none answers)
	$(BIN)/audiomatrix engine

test: ## the fast tests (seconds)
	$(BIN)/pytest -q

test-lock: ## the marked tests: real uv resolution against the package index
	$(BIN)/pytest -q -m lock

test-image: ## the marked tests: real images and containers on a real Docker Engine
	$(BIN)/pytest -q -m image

test-site: ## the marked tests: the generated site in headless Debian chromium
	$(BIN)/pytest -q -m site

test-smoke: ## the marked tests: the smoke suite natively in the CI cells (GB of wheels)
	$(BIN)/pytest -q -m smoke

test-conda: ## the marked tests: real conda-lock solves against conda-forge (micromamba on PATH)
	$(BIN)/pytest -q -m conda

test-boundary: ## the marked tests: recorded catalog boundaries re-verified by real installs
	$(BIN)/pytest -q -m boundary

test-wheels: ## the marked tests: three torch wheels' GPU code read by audiomatrix and by NVIDIA's cuobjdump
	$(BIN)/pytest -q -m wheels

test-fault: ## the marked tests: full disk, OOM kill, lost registry, index and engine (root)
	$(BIN)/pytest -q -m fault

lint:
	$(BIN)/ruff check src tests benchmarks noxfile.py
	$(BIN)/ruff format --check src tests benchmarks noxfile.py

ci: lint test test-lock test-boundary test-site test-smoke test-image test-fault test-wheels ## everything CI checks

matrix: system ## the pipeline for a selection (it starts the engine itself): make matrix SELECT='torch=2.9.1' MATRIX=matrix.yaml
	$(BIN)/audiomatrix matrix --matrix $(MATRIX) $(foreach s,$(SELECT),--select '$(s)')

report: ## COMPATIBILITY.md, compatibility.json and site/index.html from results/; SINCE=HEAD: what changed since that commit's table
	@if [ -n "$(SINCE)" ]; then \
		previous=$$(mktemp) && trap 'rm -f "$$previous"' EXIT && \
		git show '$(SINCE):compatibility.json' > "$$previous" && \
		$(BIN)/audiomatrix report --previous "$$previous"; \
	else $(BIN)/audiomatrix report; fi

publish: ## push the table's tested images with SBOMs: make publish REGISTRY=host[:port][/ns]
	$(BIN)/audiomatrix publish $(if $(REGISTRY),--registry '$(REGISTRY)')

lock:
	$(BIN)/audiomatrix lock --matrix $(MATRIX) $(foreach s,$(SELECT),--select '$(s)')

cells:
	$(BIN)/audiomatrix cells --matrix $(MATRIX)

doctor:
	$(BIN)/audiomatrix doctor --matrix $(MATRIX)

bench:
	$(BIN)/python benchmarks/expand.py
	$(BIN)/python benchmarks/smoke.py
	$(BIN)/python benchmarks/images.py

clean:
	rm -rf $(VENV) .nox .pytest_cache .ruff_cache
