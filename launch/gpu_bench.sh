#!/usr/bin/env bash
# Every GPU measurement of the README's benchmark table, in one go (accelerator
# time is scarce). Run from the repository root on a machine with one NVIDIA GPU:
#
#     OUT=/tmp/bench bash launch/gpu_bench.sh
#
# Writes $OUT/bench.jsonl (one JSON object per measurement) and $OUT/log.txt.
# Where ml_collections, tensorflow-datasets and grain are missing, put their
# wheels in .whl/ (see docs/BENCH.md); torch + timm, where installed, give the
# timm + torch.compile reference at the same shapes
# (shared/bench/timm_reference.py, or $TIMM_REF).
set -uo pipefail
OUT=${OUT:-/tmp/vision_jax_bench}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi -L
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"

vj() {  # vj SECONDS ARGS...: one `vision-jax` measurement appended to bench.jsonl
  local t=$1; shift
  echo "== vision-jax $*"
  timeout "$t" python3 -m vision_jax.cli "$@" --json | tail -1 | tee -a "$OUT/bench.jsonl"
}
timm() {  # timm SECONDS MODEL: the timm + torch.compile reference step
  local ref=${TIMM_REF:-../shared/bench/timm_reference.py}
  [ -f "$ref" ] || { echo "no $ref"; return; }
  echo "== timm $2"
  timeout "$1" python3 "$ref" "$2" 256 --compile | tail -1 | tee -a "$OUT/bench.jsonl"
}
VIT="--config=configs/vit.py:B/16 --config.batch_size=256"
R50="--config=configs/resnet.py:50 --config.batch_size=256"

vj 150 bench $VIT --config.model.attention_impl=cudnn
vj 150 bench $R50
timm 200 vit_base_patch16_224
timm 200 resnet50
vj 100 bench $VIT --config.model.attention_impl=cudnn --mode=infer
vj 100 bench $R50 --mode=infer
vj 100 bench $VIT --config.model.attention_impl=xla
vj 100 bench $VIT --config.model.attention_impl=cudnn --steps=5 --warmup=2 --profile="$OUT/prof_vit"
vj 100 bench $R50 --steps=5 --warmup=2 --profile="$OUT/prof_r50"
rm -rf "$OUT"/prof_*  # the op summaries are in bench.jsonl; traces are too large to bring back
echo "== done"
