# adavoice: fresh-machine entry points. `make demo` and `make test` each install what they need.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SYSSTAMP := .system-packages
TORCH   := torch==2.11.0 torchaudio==2.11.0
APT_PACKAGES := espeak-ng libespeak-ng1 flite festival festvox-kallpc16k festvox-kdlpc16k \
  festvox-us-slt-hts festvox-czech-dita festvox-czech-machac festvox-czech-ph \
  festvox-czech-krb festvox-italp16k festvox-itapc16k sox libsox-fmt-all \
  fortunes fortunes-cs fortunes-it wordnet-base

.PHONY: install install-system test test-slow lint demo corpus-en corpus-adapt corpus-adapt-dev \
  corpus-cs corpus-it bootstrap-cs bootstrap-it clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned, so nothing later pulls a different build
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[sdk,dev,eval]' $(TORCH)
	touch $(STAMP)

# System speech engines used by the synthetic corpora and their tests (needs root).
install-system:
	@if command -v espeak-ng >/dev/null && command -v flite >/dev/null && command -v festival >/dev/null \
	  && command -v sox >/dev/null && command -v fortune >/dev/null; then echo "system packages present"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); fi

test: install install-system
	$(BIN)/python -m pytest -m "not slow"

test-slow: install install-system
	$(BIN)/python -m pytest -m slow

lint: install
	$(BIN)/ruff check adavoice tests benchmarks examples

# The English base corpus (DESIGN §3): see BENCHMARKS.md for its build time.
corpus-en: install install-system
	$(BIN)/adavoice corpus build data/corpus-en --language en --utterances 300 --seed 0 \
	  --voices $(shell cat benchmarks/base_voices.txt)

# Held-out target voices for benchmarks/adapt.py (none of them is in the base corpus).
corpus-adapt: install install-system
	$(BIN)/adavoice corpus build data/adapt-targets --language en --utterances 60 --seed 5 \
	  --voices flite:slt espeak:en-us+f3 espeak:en-us+m3

# a development set for choosing adaptation settings (40 sentences per target the benchmark's
# test sentences do not include): benchmarks/adapt.py --test-data data/adapt-dev
corpus-adapt-dev: install install-system
	$(BIN)/adavoice corpus build data/adapt-dev --language en --utterances 60 --seed 11 \
	  --voices flite:slt espeak:en-us+f3 espeak:en-us+m3

# The Czech data of the LRSpeech benchmark (issue 20): see benchmarks/bootstrap_corpus.py.
corpus-cs: install install-system
	$(BIN)/python benchmarks/bootstrap_corpus.py --language cs --out data/bootstrap-cs

corpus-it: install install-system
	$(BIN)/python benchmarks/bootstrap_corpus.py --language it --out data/bootstrap-it

# A bootstrap on default settings (judge, bootstrap, topline), then its ablation table
# (BENCHMARKS.md "New language"): make bootstrap-cs, make bootstrap-it.
define BOOTSTRAP
	test -f runs/judge-$(1)/config.json || $(BIN)/adavoice train asr data/bootstrap-$(1)/full \
	  --out runs/judge-$(1) --init demo --steps 500
	$(BIN)/adavoice lang bootstrap $(1) --paired data/bootstrap-$(1)/paired \
	  --low-quality-paired data/bootstrap-$(1)/low-quality \
	  --unpaired-speech data/bootstrap-$(1)/unpaired \
	  --unpaired-text data/bootstrap-$(1)/unpaired-text.txt --eval data/bootstrap-$(1)/eval \
	  --judge runs/judge-$(1) --out runs/bootstrap-$(1)
	test -f runs/topline-$(1)/config.json || \
	  $(BIN)/python benchmarks/bootstrap_topline.py --language $(1)
	$(BIN)/python benchmarks/bootstrap.py runs/bootstrap-$(1) --data data/bootstrap-$(1) \
	  --topline runs/topline-$(1)
endef

bootstrap-cs: corpus-cs
	$(call BOOTSTRAP,cs)

bootstrap-it: corpus-it
	$(call BOOTSTRAP,it)

demo: install install-system
	$(BIN)/python examples/demo.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
