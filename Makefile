# Each target sets up .venv itself, so a fresh clone needs only `make demo` or `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PEERS := $(VENV)/.peers

.PHONY: demo test format

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# bench/peers.py's peers (never the project's requirements), so the tests of their runners run too
$(PEERS): $(STAMP) bench/requirements-peers.txt
	$(PY) -m pip install --quiet -r bench/requirements-peers.txt
	touch $(PEERS)

demo: $(STAMP)
	$(VENV)/bin/nopaingan demo --out outputs/demo

test: $(STAMP) $(PEERS)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
