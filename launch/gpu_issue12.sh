#!/usr/bin/env bash
# Issue 12's GPU runs in one go (accelerator time is scarce): the full-size RL
# configs (shapes_goal, MinAtar Breakout) and the video ladder with three
# seeds, all at once on one GPU. Run from the repository root:
#
#     OUT=/tmp/gpu12 bash launch/gpu_issue12.sh          # SMOKE=1: tiny versions, any machine
#
# Writes $OUT/log.txt and $OUT/results.tar.gz (every run's summary.json,
# metrics, plots and log). Missing packages travel as wheels in .whl/
# (docs/BENCH.md).
set -uo pipefail
OUT=${OUT:-/tmp/gpu12}
SMOKE=${SMOKE:-0}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
PY=${PY:-python3}
W=${W:-/tmp/gpu12_work}
mkdir -p "$W"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 XLA_PYTHON_CLIENT_PREALLOCATE=false
export VISION_JAX_DATA_DIR=$W/data
nvidia-smi -L 2>/dev/null; nproc
$PY -c "import jax; print('jax', jax.__version__, jax.devices())"
start=$(date +%s)

DEADLINE=${DEADLINE:-500}  # seconds from here: every run is stopped by then, so the results come back
vj() {  # vj SECONDS NAME ARGS...: one `vision-jax` run, logged to $W/NAME.log
  local t=$1 name=$2; shift 2
  local left=$(( DEADLINE - $(date +%s) + start ))
  (( t > left )) && t=$left
  timeout "$t" $PY -m vision_jax.cli "$@" --workdir="$W/$name" > "$W/$name.log" 2>&1
  local rc=$?
  echo "$(( $(date +%s) - start )) s: $name exit $rc"
}

RL_ARG=""; VIDEO_ARG=""; SEEDS="0 1 2"
if [ "$SMOKE" = 1 ]; then RL_ARG=":runlocal"; VIDEO_ARG=",runlocal"; SEEDS="0"; fi
vj "$DEADLINE" rl_shapes_goal rl --config=configs/rl/shapes_goal.py$RL_ARG &
vj "$DEADLINE" rl_breakout rl --config=configs/rl/minatar_breakout.py$RL_ARG &

if [ "$SMOKE" = 1 ]; then SIZES="--train-size 256 --test-size 64"; else SIZES="--train-size 4000 --test-size 1000"; fi
$PY -m vision_jax.cli datasets prepare moving_shapes $SIZES > "$W/prepare.log" 2>&1
rc=$?; echo "$(( $(date +%s) - start )) s: moving_shapes prepared (exit $rc)"
for seed in $SEEDS; do  # all models and seeds at once: small models, one GPU, 16 cores
  for m in single_frame early_fusion late_fusion c3d r2plus1d timesformer; do
    vj "$DEADLINE" "video_${m}_s$seed" train --config=configs/video/clips.py:model=$m,seed=$seed$VIDEO_ARG &
  done
done
wait
tar czf "$OUT/results.tar.gz" -C "$W" --exclude=./data --exclude=checkpoints .
echo "done in $(( $(date +%s) - start )) s"
