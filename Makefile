# Entry points: `make lab`, `make test` (a few minutes) and `make test-all` (everything; what CI runs).
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COLAB_VENV := .venv-colab
KAGGLE_VENV := .venv-kaggle

.PHONY: install lab test test-all colab-env kaggle-env lint dist clean

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

# A Kaggle-like runtime beside it (Kaggle's versions plus JupyterLab and papermill, Python 3.12 where
# there is one), built and checked the same way.
kaggle-env:
	bash .ci/kaggle_env.sh $(KAGGLE_VENV)

# The default run, in 2 pytest-xdist workers (a test file stays in one worker, so its module fixtures load
# once): the engine with its parity cases, the lab, the forms, the real-kernel runs, one notebook run
# headless and one browser smoke test. Tests marked slow (the other browser tests and notebook runs,
# training notebook, the GPU check's CPU run ...) and those marked colab or kaggle run in `make test-all` only.
test: $(STAMP)
	$(VPY) -m pytest -q -m "not slow and not colab and not kaggle" -n 2 --dist loadfile --durations=15

# Everything, the slow, Colab- and Kaggle-environment tests included (the latter fail rather than skip here).
test-all: $(STAMP) colab-env kaggle-env
	SA3LAB_COLAB_VENV=$(COLAB_VENV) SA3LAB_KAGGLE_VENV=$(KAGGLE_VENV) $(VPY) -m pytest -q --durations=30

# The wheel and the sdist in dist/: put the wheel beside the notebooks (or in a Kaggle dataset) and their
# first cell installs it. A workshop bundle (wheel, notebooks, models): python -m sa3lab bundle (docs/workshops-offline.md).
dist: $(STAMP)
	rm -rf dist
	$(VPY) -m build --outdir dist .

lint: $(STAMP)
	$(VENV)/bin/ruff check stable_audio_3 sa3lab tests benchmarks

clean:
	rm -rf $(VENV) $(COLAB_VENV) $(KAGGLE_VENV) .pytest_cache
