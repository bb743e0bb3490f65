# moleport — all set-up is done by `make export` and `make test` on a fresh machine.
PY       ?= python3.11
VENV     ?= .venv
VPY      := $(VENV)/bin/python
STAMP    := $(VENV)/.installed
NAME     ?= default
CKPT     ?=
DATA     ?=
EXPORT_ARGS ?=
SHARED   ?= ../shared
# SHARED=DIR on the command line (or in the environment) also points the code's own look-ups (ImageNet weights,
# shared-data tests) there
ifneq ($(origin SHARED),file)
export MOLEPORT_SHARED := $(abspath $(SHARED))
endif
HAM      = $(SHARED)/data/ham10000-mel-nv
EXTERNAL = $(SHARED)/data/isic-external-dev
# make ship's split manifest of HAM10000 (the pipeline writes artifacts/splits/<name>.json)
SHIP_SPLIT := artifacts/splits/ship.json
# make grid: the data (a split manifest or a source folder), the parent folder of its runs, extra `moleport train` flags
GRID_DATA ?= $(SHIP_SPLIT)
GRID_OUT  ?= artifacts/train/grid
TRAIN_ARGS ?=
# make ablation: one variant of `python -m moleport.train.ablation` (a_scratch, b_imagenet, c_augment, d_sog); the
# defaults are round 2 of docs/CLINICAL.md (4,800 image-steps or 480 s)
VARIANT  ?= d_sog
ABLATION_OUT  ?= artifacts/evaluate/ablation-4800
ABLATION_ARGS ?= --budget-s 480 --max-images 4800 --val-nevi 300 --bootstrap 1000
# make evaluate: a checkpoint or an artifact in a bundle, its data (DATA: source folder or split manifest; default
# the bundle's own split artifacts/splits/$(NAME).json), the output folder, extra `moleport evaluate` flags
MODEL    ?= artifacts/export/$(NAME)/tflite/model_fp32.tflite
OUT      ?= artifacts/evaluate/$(NAME)
EVAL_ARGS ?=
# MODEL and OUT are common environment variable names: only the make command line sets them
ifeq ($(origin MODEL),environment)
MODEL = artifacts/export/$(NAME)/tflite/model_fp32.tflite
endif
ifeq ($(origin OUT),environment)
OUT = artifacts/evaluate/$(NAME)
endif

.PHONY: install export ship ship-split grid ablation evaluate calibrate test test-fast bench parity parity-real \
  android-assets android-core-test web serve-web web-test clean gpu-check

# The pinned stack with the test extra, then [tool.moleport] no-deps of pyproject.toml (onnx2tf) with --no-deps:
# their declared dependencies pin older numpy/onnx/tensorflow than the stack and cannot be resolved with it.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade "pip==25.3"
	$(VPY) -m pip install -q -e ".[test]"
	$(VPY) -m pip install -q --no-deps $$($(VPY) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["moleport"]["no-deps"]))')
	touch $(STAMP)

install: $(STAMP)

export: $(STAMP)
	$(VPY) -m moleport.pipeline --name $(NAME) $(if $(CKPT),--ckpt $(CKPT)) $(if $(DATA),--data $(DATA)) $(EXPORT_ARGS)

# The shipped model: the 'ship' recipe on real HAM10000 dermoscopy, its int8 backbone, every export, parity on
# the whole test split (the verdicts the apps obey) and evaluation on the test split and the external ISIC set.
# Bundle artifacts/export/ship, run folder artifacts/train/ship-ship, split artifacts/splits/ship.json.
ship: $(STAMP)
	$(VPY) -m moleport.pipeline --name ship --profile ship --data $(HAM) --external $(EXTERNAL) $(EXPORT_ARGS)

# make ship's split alone (lesion-grouped 60/20/20, seed 0: the same items and manifest sha256 as the one make ship
# writes, which overwrites it), for grid, ablation and evaluate without the 30-minute ship job.
ship-split: $(SHIP_SPLIT)
$(SHIP_SPLIT): | $(STAMP)
	$(VPY) -m moleport.cli data split $(HAM) --out $@ --seed 0

# The paper's Table 2: its seven runs on GRID_DATA, paper_grid.{json,md} in GRID_OUT (about 39.5 h on 2 CPU
# cores: meant for a GPU; TRAIN_ARGS="--device cuda", "--distributed N", "--limit N" for a smoke run).
grid: $(STAMP) $(GRID_DATA)
	$(VPY) -m moleport.cli train --grid paper --data $(GRID_DATA) --out $(GRID_OUT) $(TRAIN_ARGS)

# One generalisation-ablation variant (docs/CLINICAL.md) on make ship's split, external ISIC set for evaluation
# only, into ABLATION_OUT/VARIANT.
ablation: $(STAMP) $(SHIP_SPLIT)
	$(VPY) -m moleport.train.ablation $(VARIANT) --manifest $(SHIP_SPLIT) --external $(EXTERNAL) \
	  --out $(ABLATION_OUT)/$(VARIANT) $(ABLATION_ARGS)

# Metrics with bootstrap CIs, ROC and reliability diagrams of MODEL on DATA into OUT; EVAL_ARGS="--target-sensitivity
# 0.95 --external $(EXTERNAL)" chooses the operating point on the manifest's val split.
evaluate: $(STAMP)
	$(VPY) -m moleport.cli evaluate $(MODEL) --data $(or $(DATA),artifacts/splits/$(NAME).json) --out $(OUT) $(EVAL_ARGS)

# Site calibration: re-choose NAME's threshold on a site's own labelled images (SITE; default the external ISIC set,
# split into calibration and check halves) for melanoma sensitivity TARGET; writes a new, re-judged bundle.
SITE     ?= $(SHARED)/data/isic-external-dev
TARGET   ?= 0.95
CALIBRATE_ARGS ?= --split-half 0
calibrate: $(STAMP)
	$(VPY) -m moleport.cli calibrate artifacts/export/$(NAME) --data $(SITE) --target-sensitivity $(TARGET) \
	  --out artifacts/calibrate/$(NAME)-$(notdir $(SITE)) --force $(CALIBRATE_ARGS)

test: $(STAMP)
	$(VPY) -m pytest -q tests

test-fast: $(STAMP)
	$(VPY) -m pytest -q -m "not heavy" tests

bench: $(STAMP)
	$(VPY) -m moleport.cli bench

parity: $(STAMP)
	$(VPY) -m moleport.cli parity artifacts/export/$(NAME)

clean:
	rm -rf artifacts/data artifacts/train artifacts/export artifacts/parity artifacts/web

# make export's pipeline (profile 'real') on a lesion-grouped ~800-image subset of HAM10000: every export and the
# parity harness on real dermoscopy in a few minutes; skipped (exit 0) where ../shared is absent.
parity-real: $(STAMP)
	@if [ -d $(HAM) ]; then \
	  $(VPY) -m moleport.pipeline --name parity-real --profile real --data $(HAM) --subset 800 $(EXPORT_ARGS); \
	else echo "parity-real: skipped: $(HAM) is absent (SHARED=DIR to point elsewhere)"; fi

android-assets:
	bash android_demo/scripts/copy_assets.sh artifacts/export/$(NAME)

android-core-test: $(STAMP)
	bash android_demo/scripts/core_test.sh

web: $(STAMP)
	bash web_demo/scripts/build.sh artifacts/export/$(NAME)

serve-web:
	bash web_demo/scripts/serve.sh

web-test: $(STAMP)
	bash web_demo/scripts/web_test.sh artifacts/export/$(NAME)

# The prepared GPU check (make bench, then the whole Table 2 grid on $(SHARED)/data/ham10000-mel-nv, report in
# artifacts/gpu_check/gpu_check.md); GPU_CHECK_ARGS=--tiny runs its CPU smoke mode.
gpu-check: $(STAMP)
	VPY=$(VPY) bash scripts/gpu_check.sh $(GPU_CHECK_ARGS)
