#!/usr/bin/env bash
# Runs a vision-jax command on every worker of a Cloud TPU VM slice.
#
#   launch/tpu_pod.sh TPU_NAME ZONE -- vision-jax train --config=configs/vit.py:B/16 \
#       --workdir=gs://BUCKET/runs/vit_b16
#
# Copies this checkout to every worker, installs it, then starts the command
# on all workers at once. JAX finds the other workers by itself (the TPU
# metadata lists them), so `vision_jax.distributed` initialises
# `jax.distributed` with no arguments. The workdir must be shared storage
# (a gs:// bucket) because every worker writes its shards of each checkpoint.
set -euo pipefail
if [[ $# -lt 4 || "$3" != "--" ]]; then
  echo "usage: $0 TPU_NAME ZONE -- COMMAND..." >&2
  exit 2
fi
TPU_NAME=$1; ZONE=$2; shift 3
REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
ARCHIVE=$(mktemp -t vision_jax.XXXXXX.tar.gz)
git -C "$REPO_DIR" archive --format=tar.gz -o "$ARCHIVE" HEAD

gcloud compute tpus tpu-vm scp "$ARCHIVE" "$TPU_NAME":~/vision_jax.tar.gz \
  --zone="$ZONE" --worker=all
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="
  set -e
  mkdir -p ~/vision_jax && tar -xzf ~/vision_jax.tar.gz -C ~/vision_jax
  cd ~/vision_jax
  python3 -m pip install -q -e . 'jax[tpu]'
  $(printf '%q ' "$@")
"
