# Sparse attention for NMT: setup, tests and the toy pipeline.
# Every target is a thin wrapper; the logic lives in scripts/ and the Python packages.

PYTHON       ?= python3
VENV         ?= .venv
TORCH_SPEC   ?= torch==2.13.0
FAIRSEQ_SPEC ?= fairseq-fixed==0.12.3.1
BIN          := $(VENV)/bin
# pytest workers: the suite is sized for 2 cores
TEST_WORKERS ?= 2

export PYTHON VENV TORCH_SPEC FAIRSEQ_SPEC

.PHONY: help setup test test-fast toy-data toy-train clean-toy demo results-multi30k results-multi30k-sweep \
        interpret-multi30k data train sweep translate bleu align report explore bench bench-quick

# every target and the variables it reads (tests/test_make_targets.py checks that none is missing)
help:
	@echo "make help                       this list"
	@echo "make setup                      create VENV (.venv): TORCH_SPEC ($(TORCH_SPEC)), FAIRSEQ_SPEC, this project [PYTHON, BROWSER=1: + headless Chromium]"
	@echo "make test                       the whole test suite (pytest, TEST_WORKERS=$(TEST_WORKERS) workers)"
	@echo "make test-fast                  everything but the end-to-end fairseq CLI tests"
	@echo "make toy-data                   synthetic corpus with known alignments -> TOY_BIN (data-bin/toy) [TOY_DIR]"
	@echo "make toy-train ATTN=rela        train the tiny ATTN model on it (CPU, ~1 minute) [TOY_BIN]"
	@echo "make clean-toy                  delete TOY_DIR, TOY_BIN and checkpoints/toy-*"
	@echo "make demo                       Tatoeba De-En -> softmax and ReLA models -> BLEU, AER, report (CPU, ~7 min)"
	@echo "make results-multi30k           the Multi30k comparison (13 runs, ~7 h on 2 cores) [RESULTS_ARGS]"
	@echo "make results-multi30k-sweep     learning rate x warmup for softmax and rela (10 runs) [RESULTS_ARGS]"
	@echo "make interpret-multi30k         interpretability battery on every variant of results-multi30k"
	@echo "make data PAIR=en-de            download and prepare a WMT direction -> DATA_BIN/<config> [DATA_ARGS]"
	@echo "                                (PAIR: en-de en-fr ro-en en-fi zh-en; DATA_BIN defaults to data-bin)"
	@echo "make train PAIR=en-de ATTN=rela fairseq-hydra-train configs/<config>.yaml +attention=ATTN [TRAIN_ARGS, DATA_BIN, CHECKPOINT_ROOT]"
	@echo "make sweep PAIR=en-de ATTN=softmax,rela SEEDS=1,2 LAUNCHER=basic|local|slurm"
	@echo "                                fairseq-hydra-train --multirun, one folder per job, reruns resume"
	@echo "                                [SWEEP_ARGS (e.g. hydra.launcher.partition=gpu batch=4gpu), DATA_BIN, CHECKPOINT_ROOT]"
	@echo "make translate PAIR=en-de ATTN=rela   test set translation -> results/<config>/ATTN/test.hyp [DATA_BIN, CHECKPOINT_ROOT, SEED]"
	@echo "make bleu PAIR=en-de ATTN=rela        sacreBLEU of test.hyp -> bleu.json [DATA_BIN, SEED]"
	@echo "make align PAIR=en-de ATTN=rela       AER + attention stats on the gold set [GOLD_DIR, DATA_BIN, CHECKPOINT_ROOT, SEED]"
	@echo "make report PAIR=en-de          one table across every scored variant (and seed) of the pair"
	@echo "make explore PAIR=en-de ATTN=softmax,rela  attention explorer page, variants side by side -> results/<config>/explorer/ [GOLD_DIR, DATA_BIN, CHECKPOINT_ROOT, SEED, EXPLORE_ARGS]"
	@echo "make bench                      speed benchmarks, full mode (~23 min, 2 cores) -> results/perf/*_full.* [BENCH_THREADS]"
	@echo "make bench-quick                the same, quick mode (~1 min) [BENCH_THREADS]"

BROWSER ?= 0
setup:
	@bash scripts/setup_env.sh
	@if [ "$(BROWSER)" = "1" ]; then bash scripts/install_browser.sh; fi

test:
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -q

test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

# --- toy pipeline: synthetic data whose word alignment is known -----------------------
TOY_DIR ?= data/toy
TOY_BIN ?= data-bin/toy
ATTN    ?= rela

toy-data: $(TOY_BIN)/dict.src.txt

$(TOY_BIN)/dict.src.txt:
	$(BIN)/python scripts/toy_corpus.py $(TOY_DIR)
	$(BIN)/fairseq-preprocess --source-lang src --target-lang tgt \
	    --trainpref $(TOY_DIR)/train --validpref $(TOY_DIR)/valid --testpref $(TOY_DIR)/test \
	    --destdir $(TOY_BIN).tmp --joined-dictionary --workers 1
	rm -rf $(TOY_BIN) && mv $(TOY_BIN).tmp $(TOY_BIN)

toy-train: toy-data
	$(BIN)/fairseq-train $(TOY_BIN) --user-dir fairseq_plugins --arch $(ATTN)_transformer_tiny \
	    --optimizer adam --adam-betas '(0.9, 0.98)' --lr 0.005 --lr-scheduler inverse_sqrt --warmup-updates 100 \
	    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 --max-tokens 2000 --max-update 600 \
	    --save-dir checkpoints/toy-$(ATTN) --no-epoch-checkpoints --log-format simple --log-interval 100
	$(BIN)/fairseq-generate $(TOY_BIN) --user-dir fairseq_plugins --path checkpoints/toy-$(ATTN)/checkpoint_best.pt \
	    --gen-subset test --beam 4 --batch-size 64 | tail -1

clean-toy:
	rm -rf $(TOY_DIR) $(TOY_BIN) $(TOY_BIN).tmp checkpoints/toy-*

# --- the five WMT directions ----------------------------------------------------------
PAIR ?= en-de
CONFIG_en-de := wmt14_en_de
CONFIG_en-fr := wmt14_en_fr
CONFIG_ro-en := wmt16_ro_en
CONFIG_en-fi := wmt18_en_fi
CONFIG_zh-en := wmt18_zh_en
CONFIG = $(or $(CONFIG_$(PAIR)),$(error unknown PAIR=$(PAIR); use one of en-de en-fr ro-en en-fi zh-en))
DATA_ARGS ?=
TRAIN_ARGS ?=
# the same roots as the Hydra configs (${oc.env:DATA_BIN,data-bin}, ${oc.env:CHECKPOINT_ROOT,checkpoints})
DATA_ROOT = $(or $(DATA_BIN),data-bin)
CKPT_ROOT = $(or $(CHECKPOINT_ROOT),checkpoints)
GOLD_DIR ?=
LAUNCHER ?= basic
SEEDS ?=
# one seed of make sweep SEEDS=...: checkpoints and results in <variant>/seed<SEED>
SEED ?=
SWEEP_ARGS ?=
# each target checks its inputs first: one line naming what is missing and the target that makes it
CHECK = $(BIN)/python -m mt_pipeline.launch_checks --pair $(PAIR) --config $(CONFIG) --data-root $(DATA_ROOT) \
        --checkpoints $(CKPT_ROOT) $(if $(GOLD_DIR),--gold-dir $(GOLD_DIR)) $(if $(SEED),--seed $(SEED))
PAIR_PATHS = --data-bin $(DATA_ROOT)/$(CONFIG) --checkpoints $(CKPT_ROOT) $(if $(SEED),--seed $(SEED))
# $(call check,TARGET OPTIONS): stop make with the check's one line (as make's own errors) when an input is missing
# (the check prints it on stdout with --make; a crash of the check itself, status != 0, stops make too)
check = $(eval _missing := $(shell $(CHECK) --make $(1)))$(if $(or $(_missing),$(filter-out 0,$(.SHELLSTATUS))),$\
        $(error $(or $(_missing),the input check failed: $(CHECK) $(1))))

data:
	$(BIN)/python -m mt_pipeline data --pair $(PAIR) --out $(DATA_ROOT)/$(CONFIG) $(DATA_ARGS)

train:
	@$(call check,train --attn $(ATTN))
	$(BIN)/fairseq-hydra-train --config-dir configs --config-name $(CONFIG) +attention=$(ATTN) $(TRAIN_ARGS)

# one job per variant x seed (configs/launcher/, configs/base/sweep_layout.yaml)
sweep:
	@$(call check,sweep --attn $(ATTN) --launcher $(LAUNCHER) --seeds '$(SEEDS)')
	$(BIN)/fairseq-hydra-train --config-dir configs --config-name $(CONFIG) --multirun +launcher=$(LAUNCHER) \
	    +attention=$(ATTN) $(if $(SEEDS),common.seed=$(SEEDS) 'hydra.sweep.subdir=$${model.attention}/seed$${common.seed}') \
	    $(SWEEP_ARGS)

translate bleu:
	@$(call check,$@ --attn $(ATTN))
	$(BIN)/python -m mt_pipeline.pairs $@ --pair $(PAIR) --attn $(ATTN) $(PAIR_PATHS)

align:
	@$(call check,$@ --attn $(ATTN))
	$(BIN)/python -m mt_pipeline.pairs $@ --pair $(PAIR) --attn $(ATTN) $(PAIR_PATHS) $(if $(GOLD_DIR),--gold-dir $(GOLD_DIR))

report:
	@$(call check,report)
	$(BIN)/python -m mt_pipeline.pairs report --pair $(PAIR) --checkpoints $(CKPT_ROOT)

# one HTML page: ATTN's checkpoints side by side on the gold set (EXPLORE_ARGS: --sentences N, --bits B, --cross-only)
EXPLORE_ARGS ?=
explore:
	@$(call check,explore --attn $(ATTN))
	$(BIN)/python -m mt_pipeline.pairs explore --pair $(PAIR) --attn $(ATTN) $(PAIR_PATHS) $(if $(GOLD_DIR),--gold-dir $(GOLD_DIR)) $(EXPLORE_ARGS)

# --- demo and recorded results -----------------------------------------------------------
demo:
	$(BIN)/python -m mt_pipeline.runs demo

# 13 runs (3 seeds for softmax, rela, entmax15; 1 for the others), two at a time: ~7 h on 2 CPU cores;
# interrupted runs resume (same CHECKPOINT_ROOT); RESULTS_ARGS=--finished-only reports what is done so far
RESULTS_ARGS ?=
results-multi30k:
	$(BIN)/python -m mt_pipeline.runs multi30k --jobs 2 $(RESULTS_ARGS)

# learning rate x warmup at a fixed budget (2,000 updates) for softmax and rela: 10 runs, ~2.5 h on 2 cores
results-multi30k-sweep:
	$(BIN)/python -m mt_pipeline.runs multi30k-sweep --jobs 2 $(RESULTS_ARGS)

# interpretability battery (alignment-eval interpret all) on every variant trained by results-multi30k
interpret-multi30k:
	$(BIN)/python -m mt_pipeline.runs interpret-multi30k

# --- speed benchmarks: JSON, Markdown and PNG in results/perf/ ---------------------------
BENCH_THREADS ?= 1

bench:
	$(BIN)/python -m benchmarks run --mode full --threads $(BENCH_THREADS)

bench-quick:
	$(BIN)/python -m benchmarks run --mode quick --threads $(BENCH_THREADS)
