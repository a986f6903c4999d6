# The VAE TP: one command per thing a student, an instructor or a maintainer does.
# `make help` lists them. Every target sets up the virtual environment first if needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Commands run with the environment's programs first on PATH (nbgrader calls `alembic`).
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup lab test test-fast test-variant run generate check-generated images clean system-deps

help:  ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "The course needs Python 3.11 or later; $(PYTHON) is $$($(PYTHON) --version 2>&1). Run make PYTHON=python3.11 (or newer)."; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
		echo "$(PYTHON) cannot create a virtual environment: install it first (Debian/Ubuntu: apt-get install python3-venv)."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	@command -v dot >/dev/null || echo "note: Graphviz's 'dot' is not installed: the model drawings will be skipped (see README, Troubleshooting)."
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with every dependency (pip path; conda users: environment.yml)

lab: $(STAMP)  ## open the course in JupyterLab (notebooks/); LAB_ARGS="--no-browser --port 8888" etc.
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS) notebooks/vae_tp.ipynb

# What the tests need from the system: bubblewrap (the sandbox every graded notebook runs in) and
# Graphviz (the model drawings). As root with apt-get, make installs them; otherwise it stops
# first with the command to run (Graphviz alone missing: the drawings are skipped).
system-deps:
	@if ! command -v bwrap >/dev/null 2>&1 || ! command -v dot >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing bubblewrap and graphviz (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap graphviz >/dev/null; \
		elif ! command -v bwrap >/dev/null 2>&1; then \
			echo "The tests grade notebooks in a bubblewrap sandbox, which is not installed: run sudo apt-get install bubblewrap graphviz (Debian/Ubuntu), then make test again."; exit 1; \
		fi; \
	fi

test: $(STAMP) system-deps  ## run the whole test suite (fast mode; needs no network)
	$(BIN)/python -m pytest --durations=5

test-fast: $(STAMP) system-deps  ## the fast tier: everything but whole-notebook runs and the grading rounds (about 2.5 min)
	$(BIN)/python -m pytest -m "not slow"

VARIANT ?= latent_dim=10
VARIANT_DIR ?= build/variant
test-variant: $(STAMP) system-deps  ## the whole suite on a clone of the last commit whose master says $(VARIANT) (one edit + generate; ~25 min)
	$(BIN)/python tools/make_variant.py --replace --out $(VARIANT_DIR) $(VARIANT)
	cd $(VARIANT_DIR) && PYTHONPATH=. VAE_TP_MNIST="$${VAE_TP_MNIST:-$(if $(wildcard ../shared/data/mnist.npz),$(abspath ../shared/data/mnist.npz),sample)}" $(abspath $(BIN))/python -m pytest --durations=5 $(VARIANT_PYTEST_ARGS)

run: $(STAMP)  ## execute the whole TP with the solution loaded, into build/run/ (VAE_TP_FAST=1 for a short run)
	$(BIN)/python tools/run_notebook.py notebooks/vae_tp.ipynb --out build/run

generate: $(STAMP)  ## regenerate the student notebook and solutions/ from the master notebook
	$(BIN)/python tools/generate.py

check-generated: $(STAMP)  ## fail if a generated file is stale
	$(BIN)/python tools/render_images.py --check
	$(BIN)/python tools/generate.py --check

images: $(STAMP)  ## re-render images/*.png from the SVG diagrams (needs rsvg-convert), then `make generate`
	$(BIN)/python tools/render_images.py

clean:  ## remove build outputs (not the environment)
	rm -rf build .pytest_cache notebooks/weights

# --- e2e: where students and instructors use it ---
# End-to-end tests (tests/e2e/, docs/jupyterhub.md): the course in JupyterLab in Debian's Chromium,
# and a whole assignment on a real JupyterHub with the nbgrader exchange (needs root: it creates
# Unix users). `make test` skips them. E2E_SCREENSHOTS=images/screenshots refreshes the README's.
E2E_SCREENSHOTS ?= build/e2e/screenshots
.PHONY: e2e e2e-install

e2e-install: $(STAMP)  ## install the e2e tests' dependencies (Chromium, JupyterHub, Playwright, proxy)
	VENV=$(VENV) tools/install_e2e.sh

e2e: e2e-install  ## end-to-end tests: JupyterLab in Chromium, and a JupyterHub round trip
	VAE_TP_E2E=1 VAE_TP_E2E_SCREENSHOTS=$(E2E_SCREENSHOTS) $(BIN)/python -m pytest tests/e2e -p no:cacheprovider --durations=0
# --- end e2e ---

# --- grading: the instructor's round ---
# The instructor's day with nbgrader, one target per step (docs/instructor.md). COURSE: the course
# folder (default: this repository); SUBMISSIONS: submissions to import first, Moodle's zip
# (or folder) or <student>/vae/vae_tp.ipynb or <student>.ipynb; STUDENT: only that student; FORCE=1: replace
# differing submissions already imported, and regrade; JOBS: notebooks graded at once (default:
# c.GradingRound.jobs in the course's nbgrader_config.py);
# SOLUTIONS=0: release without solutions/ (graded run), STUCK="...": what its notebook tells a stuck
# student to do instead of `%load`; SANDBOX=off: grade without the bubblewrap
# sandbox (explicit; the report says so). Grading always runs in fast mode.
# Moodle (docs/instructor.md, "Moodle"): SUBMISSIONS may be Moodle's "Download all submissions"
# zip or its folder; ROSTER: the CSV mapping Moodle's students to student ids (default
# $(COURSE)/roster.csv); DUEDATE="2026-12-04 23:59 Europe/Paris": the assignment's due date;
# MOODLE_TZ: the time zone of the zip's dates (default: this machine's). export-moodle:
# IDENTIFIER=email|idnumber|username, PER_EXERCISE=1, MISSING=0 (0 instead of no grade),
# PARTIAL=1 (export before every answer is graded by hand), OUT_OF=20 (scale the total).
COURSE ?= .
PORT ?= 8888
IDENTIFIER ?= email
GRADE := $(BIN)/python tools/grade.py --course $(COURSE)
DOWNLOAD_ARGS = $(if $(ROSTER),--roster "$(ROSTER)",) $(if $(DUEDATE),--duedate "$(DUEDATE)",) \
	$(if $(MOODLE_TZ),--zip-timezone "$(MOODLE_TZ)",)
.PHONY: release release-zip import autograde feedback grades report example-class formgrader export-moodle

release: $(STAMP)  ## nbgrader release into $(COURSE)/release/ (SOLUTIONS=0: no solutions/)
	$(GRADE) release $(if $(filter 0 no false off,$(SOLUTIONS)),--no-solutions,) $(if $(STUCK),--stuck "$(STUCK)",)

release-zip: $(STAMP)  ## zip the release for an LMS: $(COURSE)/vae_release.zip
	$(GRADE) zip

import: $(STAMP)  ## import SUBMISSIONS=zip|dir (Moodle's download, with ROSTER=csv) without grading; DUEDATE=...
	$(GRADE) import $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)",) $(DOWNLOAD_ARGS) $(if $(filter 1 yes true,$(FORCE)),--force,)

autograde: $(STAMP)  ## import SUBMISSIONS=zip|dir (optional), then autograde, each submission sandboxed (SANDBOX=off: not)
	VAE_TP_FAST=1 $(GRADE) autograde $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)" $(DOWNLOAD_ARGS),) \
		$(if $(filter 0 off no false,$(SANDBOX)),--no-sandbox,) \
		$(if $(STUDENT),--student "$(STUDENT)",) $(if $(filter 1 yes true,$(FORCE)),--force,) $(if $(JOBS),--jobs $(JOBS),)

feedback: $(STAMP)  ## feedback HTML: $(COURSE)/feedback/<student>/vae/vae_tp.html
	$(GRADE) feedback $(if $(STUDENT),--student "$(STUDENT)",)

grades: $(STAMP)  ## export grades: $(COURSE)/grades.csv (+ decoder_cell) and grading_report.csv
	$(GRADE) grades

report: $(STAMP)  ## what the class got wrong (after grades): $(COURSE)/class_report.html and .csv
	$(GRADE) report

example-class: $(STAMP)  ## 3 simulated submissions from the release, in build/example_class/ (walkthrough)
	$(GRADE) example-class

formgrader: $(STAMP)  ## JupyterLab on $(COURSE) for grading by hand; prints the Formgrader's URL (PORT=8888)
	$(GRADE) formgrader --port $(PORT) $(if $(LAB_ARGS),-- $(LAB_ARGS),)

export-moodle: $(STAMP)  ## $(COURSE)/moodle_grades.csv for Moodle's "Import grades > CSV file" (IDENTIFIER=email)
	$(GRADE) export-moodle --identifier $(IDENTIFIER) $(if $(ROSTER),--roster "$(ROSTER)",) \
		$(if $(filter 1 yes true,$(PER_EXERCISE)),--per-exercise,) $(if $(filter 0,$(MISSING)),--missing-zero,) \
		$(if $(filter 1 yes true,$(PARTIAL)),--partial,) $(if $(OUT_OF),--out-of $(OUT_OF),)
# --- end grading ---

# --- bench: measurements for the docs ---
# Training speed of the TP beside a plain Keras fit, PyTorch eager and the GEMM bound; see
# docs/performance.md. PyTorch and JAX are installed for the benchmark only, into .venv-bench/
# (not course dependencies). Needs the full MNIST: VAE_TP_MNIST=/path/to/mnist.npz.
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=
.PHONY: bench bench-full bench-grading bench-budgets bench-concurrency bench-report bench-student reference-run

$(BENCH_STAMP): $(STAMP) bench/setup_venv.py
	rm -rf $(BENCH_VENV)
	$(PYTHON) bench/setup_venv.py $(VENV) $(BENCH_VENV)
	touch $@

bench: $(BENCH_STAMP)  ## per-epoch tables (one core, all cores) beside Keras, JAX, PyTorch and the GEMM bound, stalls, N kernels at once, grading, time budgets (~35 min)
	$(BIN)/python bench/bench.py $(BENCH_ARGS)
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/grading.py --students 10 --baseline
	$(BIN)/python bench/class_report.py --students 300
	$(BIN)/python bench/budgets.py --full

bench-concurrency: $(STAMP)  ## N = 1, 2, 4, 8 notebook kernels training at once: throughput, epoch times, memory
	$(BIN)/python bench/concurrency.py

bench-budgets: $(STAMP)  ## the whole notebook against its budgets: fast mode (30 s) and the full run (10 min)
	$(BIN)/python bench/budgets.py --full

bench-grading: $(STAMP)  ## the grading rows alone: s per submission, sandboxed, not, and before the sandbox
	$(BIN)/python bench/grading.py --students 10 --baseline

bench-student: $(STAMP)  ## the whole TP per student (full mode): wall, CPU-s, peak memory; N = 1, 2, 4, 8 at once (~1 h)
	$(BIN)/python bench/student.py $(BENCH_STUDENT_ARGS)

reference-run: $(STAMP)  ## the TP's reference run (full mode, alone, ~7 min): README figures and images/full_run/run.json, which the prose quotes
	$(BIN)/python bench/student.py --students 1 --record images/full_run

bench-report: $(STAMP)  ## `make report` on a class of 300 (copies of 3 graded students): seconds
	$(BIN)/python bench/class_report.py --students 300

bench-full: $(BENCH_STAMP)  ## the same peers for the TP's 50 epochs: final validation loss (not in CI)
	$(BIN)/python bench/bench.py --full --no-extras $(BENCH_ARGS)
# --- end bench ---
