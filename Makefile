# Two entry points for a fresh machine: `make lab` and `make test`.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install lab test test-fast browser-deps lint clean

$(STAMP): pyproject.toml constraints-ci.txt
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install --upgrade pip
	$(VPY) -m pip install -c constraints-ci.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

test: $(STAMP)
	$(VPY) -m pytest -q

test-fast: $(STAMP)
	$(VPY) -m pytest -q -m "not slow and not browser"

lint: $(STAMP)
	$(VENV)/bin/ruff check stable_audio_3 sa3lab tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
