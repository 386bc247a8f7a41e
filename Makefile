# sqljax: every target installs what it needs first (`make install` is idempotent).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

ENV   ?= Ant
# The algorithm: sql (default), ddpg (PRESET=modern / --preset modern: TD3).
LEARNER ?=
STEPS ?=
SEED  ?= 0
OUT   ?=
ARGS  ?=
SEEDS ?= 8
CKPT  ?=
EPISODES ?= 5
TASK  ?= AntHallway
FROM  ?= runs/pretrain/AntAnyDirection/seed0
# The paper's fine-tuning schedules: alpha annealed to 0.001 and K_xi from 16 to 1 over
# the first 20 epochs (200k updates); FINETUNE_ARGS= turns them off.
FINETUNE_ARGS ?= --anneal-steps 200000 --final-reward-scale 1000 --noise-bank-size 16

export MUJOCO_GL ?= egl
export PYTHONUNBUFFERED := 1

.PHONY: alpha-pretrain exploration compare robustness install lint test test-serial test-slow bench-update bench-seeds train eval multigoal bench pretrain finetune transfer results results-table clean
.PHONY: gpu-wheels gpu-site bench-gpu pretrain-gpu transfer4 transfer4-sql-pretrain transfer4-ddpg-pretrain

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m pip install -q -c constraints.txt --no-deps gymnax  # see pyproject.toml's gymnax extra
	touch $(STAMP)

lint: install
	$(PY) -m ruff check .

# The default suite in two worker processes (whole files per worker: module fixtures are
# built once); `make test-serial` runs it in one.
test: install
	$(PY) -m pytest -q -n 2 --dist loadfile

test-serial: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

bench-update: install
	$(PY) -m experiments.perf.bench_update $(if $(LEARNER),--learner $(LEARNER)) $(ARGS)

bench-seeds: install
	$(PY) -m experiments.perf.bench_seeds $(ARGS)

train: install
	$(PY) -m experiments.train $(if $(LEARNER),--learner $(LEARNER)) --env $(ENV) --seed $(SEED) $(if $(STEPS),--steps $(STEPS)) $(if $(OUT),--out $(OUT)) $(ARGS)

eval: install
	$(PY) -m experiments.evaluate --ckpt $(CKPT) --episodes $(EPISODES) $(ARGS)

multigoal: install
	$(PY) -m experiments.studies.multigoal --seed $(SEED) $(if $(STEPS),--steps $(STEPS)) $(if $(OUT),--out $(OUT)) $(ARGS)

bench: install
	$(PY) -m experiments.bench $(if $(LEARNER),--learner $(LEARNER)) --env $(ENV) --seeds $(SEEDS) $(if $(STEPS),--steps $(STEPS)) $(if $(OUT),--out $(OUT)) $(ARGS)

pretrain: install
	$(PY) -m experiments.train --env AntAnyDirection --preset pretrain --seed $(SEED) $(if $(STEPS),--steps $(STEPS)) --out $(if $(OUT),$(OUT),runs/pretrain/AntAnyDirection/seed$(SEED)) $(ARGS)

finetune: install
	$(PY) -m experiments.train --env $(TASK) --init-from $(FROM) --seed $(SEED) $(if $(STEPS),--steps $(STEPS)) $(if $(OUT),--out $(OUT)) $(FINETUNE_ARGS) $(ARGS)

transfer: install
	$(PY) -m experiments.studies.transfer $(ARGS)

# One temperature of the alpha sweep (paper Figure 7): SCALE (reward scale = 1/alpha, required),
# 2 seeds x ALPHA_STEPS (500000) on AntAnyDirection-v1 keeping a checkpoint every 100k
# (resumes runs/alpha/scale<SCALE>), then every checkpoint's learners exported and their
# direction spread measured into results/transfer/alpha/scale<SCALE>; draw the sweep with
# python -m experiments.studies.alpha_sweep ALPHA=DIR ... (docs/transfer.md)
ALPHA_STEPS ?= 500000
alpha-pretrain: install
	$(if $(filter command line,$(origin SCALE)),,$(error make alpha-pretrain needs SCALE=..., e.g. SCALE=100))
	$(call bench_or_resume,runs/alpha/scale$(SCALE),--env AntAnyDirection-v1 --seeds 2 --preset pretrain \
	  --reward-scale $(SCALE) --eval-every 25000 --eval-episodes 3 --checkpoint-every 100000 --keep-checkpoints 8)
	$(PY) -m experiments.results export runs/alpha/scale$(SCALE) --out runs/alpha/scale$(SCALE)/learners
	$(PY) -m experiments.studies.locomotion runs/alpha/scale$(SCALE)/learners/step_*/seed* --episodes 20 \
	  --no-fresh --out results/transfer/alpha/scale$(SCALE)
	$(PY) -m experiments.studies.locomotion runs/alpha/scale$(SCALE)/learners/step_*/seed* --episodes 20 \
	  --no-fresh --deterministic --out results/transfer/alpha/scale$(SCALE)
	mkdir -p $(T4_ZOO)/scale$(SCALE) && cp -r runs/alpha/scale$(SCALE)/learners/$(ALPHA_LAST)/seed* $(T4_ZOO)/scale$(SCALE)/

# The second transfer study (docs/transfer.md, "The four-seed study against DDPG"), every
# step resumable (the same command continues): SCALE (required) the alpha sweep's pick,
# whose seeds 0 and 1 `make alpha-pretrain SCALE=...` left in zoo/AntAnyDirection-v1/scale<SCALE>;
# seeds 2 and 3 pretrained beside them; DDPG (code preset) pretrained 4 seeds x ALPHA_STEPS
# into zoo/AntAnyDirection-v1/ddpg-code; then, fine-tuned on the three -v1 tasks for
# T4_STEPS env steps, the arms paper and scratch, ddpg and ddpg-scratch (the study's main
# question first), polyak and polyak-scratch; and the report into
# results/transfer/four-seeds. About 10 h on a 2-core CPU in all.
T4         ?= runs/transfer4
T4_ZOO     ?= zoo/AntAnyDirection-v1
T4_RESULTS ?= results/transfer/four-seeds
T4_STEPS   ?= 100000
T4_ARMS   = --seeds 4 --finetune-steps $(T4_STEPS) --tasks AntHallwayWide-v1 AntHallwayNarrow-v1 \
  AntUMaze-v1 --eval-every 10000 --eval-episodes 3 --eval-at-start --checkpoint-every 25000
ALPHA_LAST = step_$(shell printf %09d $(ALPHA_STEPS))
# bench_or_resume DIR ARGS: train DIR from ARGS for ALPHA_STEPS env steps per seed, or
# continue it to ALPHA_STEPS if it has started
bench_or_resume = $(PY) -m experiments.bench $(if $(wildcard $(1)/run.json),--resume $(1),$(2) --out $(1)) \
  --steps $(ALPHA_STEPS) $(ARGS)

transfer4-sql-pretrain: install
	$(if $(filter command line,$(origin SCALE)),,$(error make $@ needs SCALE=..., the alpha sweep's pick))
	@test -f $(T4_ZOO)/scale$(SCALE)/seed1/sqljax.json || { echo "$(T4_ZOO)/scale$(SCALE) has no seeds 0 and 1: run make alpha-pretrain SCALE=$(SCALE) first"; exit 1; }
	$(call bench_or_resume,$(T4)/sql-pretrain-scale$(SCALE),--env AntAnyDirection-v1 --seeds 2 --first-seed 2 \
	  --preset pretrain --reward-scale $(SCALE) --eval-every 25000 --eval-episodes 3 \
	  --checkpoint-every 100000)
	$(PY) -m experiments.results export $(T4)/sql-pretrain-scale$(SCALE) --out $(T4)/sql-pretrain-scale$(SCALE)/learners
	cp -r $(T4)/sql-pretrain-scale$(SCALE)/learners/$(ALPHA_LAST)/seed* $(T4_ZOO)/scale$(SCALE)/

transfer4-ddpg-pretrain: install
	$(call bench_or_resume,$(T4)/ddpg-pretrain,--learner ddpg --preset code --env AntAnyDirection-v1 --seeds 4 \
	  --eval-every 25000 --eval-episodes 3 --checkpoint-every 100000)
	$(PY) -m experiments.results export $(T4)/ddpg-pretrain --out $(T4)/ddpg-learners
	mkdir -p $(T4_ZOO)/ddpg-code && cp -r $(T4)/ddpg-learners/$(ALPHA_LAST)/seed* $(T4_ZOO)/ddpg-code/

transfer4: transfer4-sql-pretrain transfer4-ddpg-pretrain
	$(PY) -m experiments.studies.transfer --pretrained $(T4_ZOO)/scale$(SCALE) $(T4_ARMS) --out $(T4)/paper $(ARGS)
	$(PY) -m experiments.studies.transfer --learner ddpg --pretrained $(T4_ZOO)/ddpg-code $(T4_ARMS) \
	  --out $(T4)/ddpg $(ARGS)
	$(PY) -m experiments.studies.transfer --pretrained $(T4_ZOO)/scale$(SCALE) $(T4_ARMS) \
	  --target-update-interval 1 --target-tau 0.005 --out $(T4)/polyak $(ARGS)
	$(PY) -m experiments.studies.transfer_report $(T4)/paper --names paper --baseline polyak=$(T4)/polyak \
	  --baseline ddpg=$(T4)/ddpg --compare paper ddpg --compare paper ddpg-scratch --compare polyak ddpg \
	  --compare scratch ddpg-scratch --out $(T4_RESULTS)

# Exploration with multimodal rewards (paper section 5.2), SQL against DDPG, e.g.
#   make exploration TASK=SwimmerFinishLine SEEDS=5 STEPS=100000   (trains, then reports)
exploration: install
	$(PY) -m experiments.studies.exploration run --task $(TASK) --seeds $(SEEDS) $(if $(STEPS),--steps $(STEPS)) $(ARGS)
	$(PY) -m experiments.studies.exploration report --task $(TASK)

# SQL beside DDPG, TD3 and SAC from the results cells: results/<task>/comparison.{png,md}
compare: install
	$(PY) -m experiments.studies.learner_comparison $(ARGS)

# Perturbed evaluation of zoo learners, e.g.
#   make robustness ARGS="--learners zoo/Hopper/code zoo/Hopper/ddpg-code --out results/robustness/Hopper"
#   make robustness ARGS="--report-only --out results/robustness/Hopper"   (summary, figure, report.md from the CSV)
robustness: install
	$(PY) -m experiments.studies.robustness $(ARGS)

# GPU benchmark on a machine with a CUDA jax and no package index (experiments/perf/bench_gpu.py).
# Here: `make gpu-wheels` fills $(WHEEL_DIR) with the wheels sqljax needs beyond the jax
# stack (CPython 3.12, manylinux x86_64). There: `make bench-gpu` installs them into
# $(GPU_SITE) (`gpu-site`) and runs the benchmark with $(GPU_PY), never the venv. To try it here:
#   JAX_PLATFORMS=cpu make bench-gpu GPU_PY=.venv/bin/python GPU_INSTALL=0 ARGS=--tiny
WHEEL_DIR   ?= .whl
GPU_PY      ?= python3
GPU_SITE    ?= /tmp/site
GPU_INSTALL ?= 1

gpu-wheels:
	PYTHON=$(PYTHON) scripts/gpu_wheels.sh $(WHEEL_DIR)

gpu-site:
	@if [ "$(GPU_INSTALL)" = 1 ] && ls $(WHEEL_DIR)/*.whl >/dev/null 2>&1; then \
	  echo "installing $$(ls $(WHEEL_DIR)/*.whl | wc -l) wheels from $(WHEEL_DIR) into $(GPU_SITE)"; \
	  $(GPU_PY) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
	    --disable-pip-version-check --target $(GPU_SITE) $(WHEEL_DIR)/*.whl \
	  || { echo "pip failed: unpacking the wheels instead"; mkdir -p $(GPU_SITE) && \
	       $(GPU_PY) -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' \
	         $(GPU_SITE) $(WHEEL_DIR)/*.whl; }; \
	fi

bench-gpu: gpu-site
	PYTHONPATH=$(CURDIR):$(GPU_SITE)$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_PY) -m experiments.perf.bench_gpu $(ARGS)

# The transfer study's pretraining on a GPU (experiments/studies/pretrain_gpu.py): SQL's
# pretrain preset on mjx:AntAnyDirection, PRETRAIN_SEEDS seeds in lockstep, the paper's 5M
# env steps or PRETRAIN_MINUTES of wall clock from the start of Python (compilation
# included), whichever ends first; no checkpoints. Writes learners.tar.gz (seed<i>/ learner
# exports, the zoo layout), metrics.csv and pretrain.json into $(OUT) (default
# runs/pretrain-gpu). Wheels, GPU_PY, GPU_SITE as for bench-gpu. To try it here:
#   JAX_PLATFORMS=cpu make pretrain-gpu GPU_PY=.venv/bin/python GPU_INSTALL=0 PRETRAIN_SEEDS=2 \
#     PRETRAIN_MINUTES=1.5 OUT=/tmp/pretrain-gpu ARGS="--learning-starts 200 --log-every 100 \
#     --replay-size 20000 --run-dir /tmp/pretrain-gpu-run"
PRETRAIN_SEEDS   ?= 16
PRETRAIN_MINUTES ?= 7

pretrain-gpu: gpu-site
	PYTHONPATH=$(CURDIR):$(GPU_SITE)$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_PY) -m experiments.studies.pretrain_gpu \
	  --seeds $(PRETRAIN_SEEDS) --max-minutes $(PRETRAIN_MINUTES) --archive \
	  --out $(if $(OUT),$(OUT),runs/pretrain-gpu) $(ARGS)

# One results cell: TASK (required), LEARNER (sql), PRESET (code), SEEDS (3), STEPS (300000);
# trains or resumes runs/results/<task>/<cell> (cell: the preset for SQL, else
# <learner>-<preset>), then writes results/, zoo/ and the table.
results: install
	$(if $(filter command line,$(origin TASK)),,$(error make results needs TASK=..., e.g. TASK=Hopper))
	$(PY) -m experiments.results run --task $(TASK) $(if $(LEARNER),--learner $(LEARNER)) $(if $(PRESET),--preset $(PRESET)) $(if $(filter command line,$(origin SEEDS)),--seeds $(SEEDS)) $(if $(STEPS),--steps $(STEPS)) $(ARGS)

results-table: install
	$(PY) -m experiments.results table

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
