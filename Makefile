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
        interpret-multi30k data train translate bleu align report bench bench-quick

help:
	@echo "make setup                      create $(VENV): $(TORCH_SPEC), $(FAIRSEQ_SPEC), this project"
	@echo "make test                       the whole test suite (pytest, $(TEST_WORKERS) workers)"
	@echo "make test-fast                  everything but the end-to-end fairseq CLI tests"
	@echo "make toy-data                   synthetic corpus with known alignments -> data-bin/toy"
	@echo "make toy-train ATTN=rela        train the tiny ATTN model on it (CPU, ~1 minute)"
	@echo "make demo                       Tatoeba De-En -> softmax and ReLA models -> BLEU, AER, report (CPU, ~7 min)"
	@echo "make data PAIR=en-de            download and prepare a WMT direction (en-de en-fr ro-en en-fi zh-en)"
	@echo "make train PAIR=en-de ATTN=rela fairseq-hydra-train with configs/<direction>.yaml +attention=ATTN"
	@echo "make translate|bleu|align PAIR=en-de ATTN=rela   test set translation, sacreBLEU, AER + attention stats"
	@echo "make report PAIR=en-de          one table across every trained variant of the pair"
	@echo "make bench                      speed benchmarks, full mode (~23 min, 2 cores) -> results/perf/*_full.*"
	@echo "make bench-quick                the same, quick mode (~1 min)"

setup:
	@bash scripts/setup_env.sh

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

data:
	$(BIN)/python -m mt_pipeline data --pair $(PAIR) --out data-bin/$(CONFIG) $(DATA_ARGS)

train:
	$(BIN)/fairseq-hydra-train --config-dir configs --config-name $(CONFIG) +attention=$(ATTN) $(TRAIN_ARGS)

translate bleu align:
	$(BIN)/python -m mt_pipeline.pairs $@ --pair $(PAIR) --attn $(ATTN)

report:
	$(BIN)/python -m mt_pipeline.pairs report --pair $(PAIR)

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
