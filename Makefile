# sqljax: every target installs what it needs first (`make install` is idempotent).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

ENV   ?= Ant
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

.PHONY: install lint test test-slow bench-update bench-seeds train eval multigoal bench pretrain finetune transfer clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lint: install
	$(PY) -m ruff check .

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

bench-update: install
	$(PY) -m experiments.bench_update $(ARGS)

bench-seeds: install
	$(PY) -m experiments.bench_seeds $(ARGS)

train: install
	$(PY) -m experiments.train --env $(ENV) --seed $(SEED) $(if $(STEPS),--steps $(STEPS)) $(if $(OUT),--out $(OUT)) $(ARGS)

eval: install
	$(PY) -m experiments.evaluate --ckpt $(CKPT) --episodes $(EPISODES) $(ARGS)

multigoal: install
	$(PY) -m experiments.multigoal --seed $(SEED) $(if $(STEPS),--steps $(STEPS)) $(if $(OUT),--out $(OUT)) $(ARGS)

bench: install
	$(PY) -m experiments.bench --env $(ENV) --seeds $(SEEDS) $(if $(STEPS),--steps $(STEPS)) $(if $(OUT),--out $(OUT)) $(ARGS)

pretrain: install
	$(PY) -m experiments.train --env AntAnyDirection --preset pretrain --seed $(SEED) $(if $(STEPS),--steps $(STEPS)) --out $(if $(OUT),$(OUT),runs/pretrain/AntAnyDirection/seed$(SEED)) $(ARGS)

finetune: install
	$(PY) -m experiments.train --env $(TASK) --init-from $(FROM) --seed $(SEED) $(if $(STEPS),--steps $(STEPS)) $(if $(OUT),--out $(OUT)) $(FINETUNE_ARGS) $(ARGS)

transfer: install
	$(PY) -m experiments.transfer $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
