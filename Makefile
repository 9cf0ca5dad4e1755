# pinnace: the two commands of the README are `make up` and `make test`.
# Everything else here is what they are built from.
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: up test setup generate check-generated dockerd images smoke cluster lint unit integration e2e bench clean

## up: set everything up, build the local images, bring up a cluster and show it working
up: setup check-generated dockerd images smoke cluster

## test: set everything up and run every check and test (what CI runs)
test: setup dockerd images lint
	PINNACE_REQUIRE_INTEGRATION=1 $(VENV)/bin/pytest tests $(PYTEST_ARGS)

setup:
	hack/setup-host.sh

generate:
	$(PY) hack/genproto.py

check-generated:
	$(PY) hack/genproto.py --check

dockerd:
	hack/start-dockerd.sh

images:
	$(VENV)/bin/pinnace-images

smoke:
	hack/smoke.sh

## cluster: a lab cluster running the guestbook, left running (pinnace lab down --name demo)
cluster:
	hack/demo.sh

lint: check-generated
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit:
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

integration:
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

e2e:
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
