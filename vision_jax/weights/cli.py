"""`vision-jax import-weights` and `vision-jax export-weights`.

    vision-jax import-weights --from resnet50.safetensors --model configs/resnet.py:50 \\
        --out weights/r50
    vision-jax train --config=configs/resnet.py:50 --config.init_from=weights/r50 ...
    vision-jax export-weights --workdir workdirs/r50 --out r50_finetuned.safetensors

import-weights takes --config.model.KEY=VALUE overrides after --model, like
train (the import checks that the model config matches the weights'
architecture and names the overrides it needs). Its --out directory is a
one-step checkpoint plus weights.json (source file, sha256, format, family,
the preprocessing the weights expect).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from vision_jax.weights.formats import WeightsError


def import_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax import-weights",
                                     description="import timm/torchvision/big_vision weights")
    parser.add_argument("--from", dest="source", required=True,
                        help=".safetensors, torch zip .pth or big_vision .npz file")
    parser.add_argument("--model", required=True, metavar="FILE[:ARG]",
                        help="the config the weights are for, e.g. configs/vit.py:B/16")
    parser.add_argument("--out", required=True, help="checkpoint directory to write")
    flags, rest = parser.parse_known_args(argv)
    bad = [r for r in rest if not r.startswith("--config.")]
    if bad:
        parser.error(f"unrecognised arguments: {' '.join(bad)}")
    from vision_jax import checkpoint as ckpt_lib
    from vision_jax import config as config_lib
    from vision_jax import weights
    try:
        config = config_lib.load_config(flags.model)
        config_lib.apply_overrides(config, [r[len("--config."):] for r in rest])
        params, batch_stats, meta = weights.import_weights(flags.source, config.model)
        if os.path.exists(os.path.join(flags.out, "0")):
            raise WeightsError(f"{flags.out} already holds a checkpoint; choose a new --out")
        meta["config"] = flags.model
        ckpt_lib.save_imported(flags.out, params,
                               {"batch_stats": batch_stats} if batch_stats else {}, meta)
    except (WeightsError, config_lib.ConfigError) as e:
        print(f"vision-jax import-weights: error: {e}", file=sys.stderr)
        return 2
    print(f"imported {meta['num_tensors']} tensors ({meta['source']} {meta['family']}, "
          f"{meta['num_classes']} classes) into {flags.out}; train with "
          f"--config.init_from={flags.out}")
    print(f"preprocessing: {json.dumps(meta['preprocessing'])}")
    return 0


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax export-weights",
                                     description="write a run's weights as timm .safetensors")
    parser.add_argument("--workdir", required=True,
                        help="a training run's workdir, or an import-weights --out directory")
    parser.add_argument("--out", required=True, help="the .safetensors file to write")
    flags = parser.parse_args(argv)
    from vision_jax import checkpoint as ckpt_lib
    from vision_jax import config as config_lib
    from vision_jax import weights
    try:
        imported = ckpt_lib.imported_meta(flags.workdir)
        if imported is not None:
            directory, model_cfg = flags.workdir, imported["model"]
        else:
            directory = os.path.join(flags.workdir, "checkpoints")
            model_cfg = config_lib.from_json(os.path.join(flags.workdir, "config.json")).model
        params, model_state = ckpt_lib.read_variables(directory)
        family = weights.family_of(model_cfg)
        weights.export_safetensors(params, model_state.get("batch_stats", {}), family,
                                   flags.out, metadata={"workdir": os.path.abspath(flags.workdir)})
    except (WeightsError, config_lib.ConfigError, ckpt_lib.CheckpointError,
            FileNotFoundError) as e:
        print(f"vision-jax export-weights: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {family} weights to {flags.out}")
    return 0
