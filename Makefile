# Two commands for a fresh machine (both set up .venv first, from requirements.lock):
#   make demo   run the whole pipeline on the toy world (dvc repro)
#   make test   run the test suite (slow end-to-end tests included)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# the environment defaults (flows/__init__.py) for the commands below that are not ours (dvc)
WITH_ENV = eval "$$(python -m flows)" &&

.PHONY: demo test setup ablations compare studio stack-up stack-down clean-venv

demo: $(STAMP)
	$(WITH_ENV) dvc repro
	@echo "Videos: data/outputs/<id>/ (video.mp4, video.gif, sheet.png); report: data/eval/report.md"
	@echo "Metrics: dvc metrics show"

# the browser tests need Debian's Chromium (below); only this target installs it
test: $(STAMP)
	@$(CHROMIUM_STEP)
	pytest

setup: $(STAMP)

# The paper's Table II on the toy world: three trainings (w/o mask, LAMP-like, Tune-A-Video-like; the
# others reuse the train stage's checkpoint) and seven evaluations; wall time in docs/timings.md.
ablations: $(STAMP)
	python -m flows.ablations

# The paper's Table I side by side on the toy world: ours, LAMP-like, Tune-A-Video-like (their weights
# shared with make ablations), Text2Video-Zero (text only, + ControlNet) and ControlVideo; after make demo.
compare: $(STAMP)
	python -m flows.compare

# The motion studio (studio/): draw a mask motion in a web page, generate it, watch it; on
# http://127.0.0.1:7860 with the latest checkpoint. make studio STUDIO_ARGS="--profile profiles/sd14.yaml"
STUDIO_ARGS ?=
studio: $(STAMP)
	maskmotion studio $(STUDIO_ARGS)

# A local Prefect server (SQLite, or PostgreSQL when MASKMOTION_PG_URL names a database) + work pool +
# deployments + workers (scripts/local_stack.sh; docs/deploy.md#scale-out).
stack-up: $(STAMP)
	scripts/local_stack.sh up

stack-down:
	scripts/local_stack.sh down

# The studio's browser tests drive Debian's Chromium (Playwright downloads no browser here): installed
# once, as root, when /usr/bin/chromium is missing, by make test only (make demo and make setup do not need it).
CHROMIUM_STEP = if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi

# Reinstall only when the pinned set or the project metadata changes.
$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

clean-venv:
	rm -rf $(VENV)
