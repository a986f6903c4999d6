# The VAE TP: one command per thing a student, an instructor or a maintainer does.
# `make help` lists them. Every target sets up the virtual environment first if needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Commands run with the environment's programs first on PATH (nbgrader calls `alembic`).
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup lab test run generate check-generated clean

help:  ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	@command -v dot >/dev/null || echo "note: Graphviz's 'dot' is not installed: the model drawings will be skipped (see README, Troubleshooting)."
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with every dependency (pip path; conda users: environment.yml)

lab: $(STAMP)  ## open the course in JupyterLab (notebooks/)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks notebooks/vae_tp.ipynb

test: $(STAMP)  ## run the whole test suite (fast mode; needs no network)
	$(BIN)/python -m pytest

run: $(STAMP)  ## execute the whole TP with the solution loaded, into build/run/ (VAE_TP_FAST=1 for a short run)
	$(BIN)/python tools/run_notebook.py notebooks/vae_tp.ipynb --out build/run

generate: $(STAMP)  ## regenerate the student notebook and solutions/ from the master notebook
	$(BIN)/python tools/generate.py

check-generated: $(STAMP)  ## fail if a generated file is stale
	$(BIN)/python tools/generate.py --check

clean:  ## remove build outputs (not the environment)
	rm -rf build .pytest_cache notebooks/weights
