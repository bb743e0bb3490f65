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

.PHONY: install export ship test test-fast bench parity parity-real android-assets android-core-test web serve-web web-test clean gpu-check

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade "pip==25.3"
	$(VPY) -m pip install -q -e .
	$(VPY) -m pip install -q --no-deps "onnx2tf==1.29.24"
	touch $(STAMP)

install: $(STAMP)

export: $(STAMP)
	$(VPY) -m moleport.pipeline --name $(NAME) $(if $(CKPT),--ckpt $(CKPT)) $(if $(DATA),--data $(DATA)) $(EXPORT_ARGS)

# The shipped model: the 'ship' recipe on real HAM10000 dermoscopy, its int8 backbone, every export, parity on
# the whole test split (the verdicts the apps obey) and evaluation on the test split and the external ISIC set.
ship: $(STAMP)
	$(VPY) -m moleport.pipeline --name ship --profile ship --data $(SHARED)/data/ham10000-mel-nv \
	  --external $(SHARED)/data/isic-external-dev $(EXPORT_ARGS)

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
	@if [ -d $(SHARED)/data/ham10000-mel-nv ]; then \
	  $(VPY) -m moleport.pipeline --name parity-real --profile real --data $(SHARED)/data/ham10000-mel-nv \
	    --subset 800 $(EXPORT_ARGS); \
	else echo "parity-real: skipped: $(SHARED)/data/ham10000-mel-nv is absent (SHARED=DIR to point elsewhere)"; fi

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
