# Two entry points for a fresh machine: `make lab` and `make test`.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COLAB_VENV := .venv-colab

.PHONY: install lab test test-fast colab-env browser-deps lint clean

$(STAMP): pyproject.toml constraints-ci.txt
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install --upgrade pip
	$(VPY) -m pip install -c constraints-ci.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

# A Colab-like runtime beside .venv (Colab's versions, the project installed as a Colab user does);
# rebuilt when the pins or pyproject.toml change, else only the project is reinstalled.
colab-env:
	bash .ci/colab_env.sh $(COLAB_VENV)

# Everything, the Colab-environment tests included (they fail rather than skip here).
test: $(STAMP) colab-env
	SA3LAB_COLAB_VENV=$(COLAB_VENV) $(VPY) -m pytest -q --durations=30

test-fast: $(STAMP)
	$(VPY) -m pytest -q -m "not slow and not browser"

lint: $(STAMP)
	$(VENV)/bin/ruff check stable_audio_3 sa3lab tests benchmarks

clean:
	rm -rf $(VENV) $(COLAB_VENV) .pytest_cache
