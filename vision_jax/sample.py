"""`vision-jax sample`: images from a trained generative run.

    vision-jax sample --workdir=DIR [--num N --steps S --guidance W --seed K --out DIR]
                      [--metrics]

Reads the run's resolved config (`DIR/config.json`), restores its newest
checkpoint onto the mesh, and draws `num` samples with the task's `sample`,
jitted and sharded over the batch axis like training. The EMA parameters are
used when the run keeps them (`config.ema.evaluate`). Class-conditional tasks
draw the classes in turn (0, 1, ..., 0, 1, ...), so a grid with one column per
class has one class per column. Text-to-image runs draw from `--captions`
in turn (default: one caption per shape class, "a red circle", "a orange
square", ...); their labels are the shape class each caption names first.
Writes, under `--out` (default DIR/samples):

  samples_<step>.png   a grid of the samples (columns = classes when conditional)
  samples_<step>.npz   ADM's layout (arr_0: uint8 [N, H, W, C], arr_1: labels),
                       which OpenAI's guided-diffusion evaluator reads for an
                       Inception FID computed elsewhere

With --metrics, the samples are then scored as `vision-jax evaluate-samples`
does (in-house FID, KID, precision/recall, floor, Gaussian baseline; all
--num samples, so use --num 2000), and the metrics go into DIR/summary.json
under "samples".
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys

import jax
import numpy as np

from vision_jax import checkpoint as ckpt_lib, config as config_lib, data, sharding


def to_uint8(images) -> np.ndarray:
    """[-1, 1] floats -> uint8 [0, 255]."""
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255
                   ).astype(np.uint8)


def image_grid(images: np.ndarray, columns: int, scale: int = 4, pad: int = 1) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 image of `columns` columns, pixels enlarged `scale`x."""
    n, h, w, c = images.shape
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + col * (w + pad):pad + col * (w + pad) + w] = image
    grid = grid.repeat(scale, 0).repeat(scale, 1)
    return grid[..., 0] if c == 1 else grid


def default_captions() -> list[str]:
    """One prompt per shape class, each in another colour."""
    from vision_jax.data import captions
    return [f"a {captions.COLOR_NAMES[i % len(captions.COLOR_NAMES)]} {shape}"
            for i, shape in enumerate(captions.SHAPES)]


def draw(config, workdir: str, *, num: int, seed: int = 0, captions: list[str] | None = None,
         **options):
    """(step, images in [-1, 1] as numpy [num, H, W, C], labels [num]) from the run's
    newest checkpoint. A text-to-image run is conditioned on `captions` in turn."""
    from vision_jax import train
    mesh = sharding.make_mesh(dict(config.mesh))
    rules = sharding.rules_from_config(config.logical_rules)
    run, step, state = train.restore_workdir(config, workdir, mesh, rules)
    task = run.task
    if not task.can_sample:
        raise config_lib.ConfigError(f"task {config.task!r} does not generate images; "
                                     "`vision-jax sample` needs a generative run")
    # Pad to a whole number of per-device rows; the extra samples are dropped.
    per = sharding.data_parallel_size(mesh, rules)
    padded = -(-num // per) * per
    classes = getattr(task, "num_classes", 0)
    labels = (np.arange(padded) % classes if classes else np.zeros(padded)).astype(np.int32)
    condition = labels
    if getattr(task, "captioned", False):
        from vision_jax.data import captions as captions_lib
        texts = captions or default_captions()
        condition = captions_lib.encode_batch([texts[i % len(texts)] for i in range(padded)])
        labels = np.asarray([captions_lib.main_object(t)[0] for t in condition], np.int32)
    elif captions:
        raise config_lib.ConfigError(f"--captions needs a text-to-image run; task "
                                     f"{config.task!r} is not conditioned on captions")
    batch_spec = sharding.batch_sharding(mesh, rules)
    params = state.ema if (config.ema.decay and config.ema.evaluate and state.ema) \
        else state.params
    shardings = run.shardings.ema if params is state.ema else run.shardings.params

    @functools.partial(jax.jit, in_shardings=(shardings, run.shardings.model_state,
                                              None, batch_spec),
                       out_shardings=batch_spec)
    def sample(params, variables, rng, labels):
        return task.sample(params, variables, rng, num=padded, labels=labels, **options)

    images = sample(params, state.model_state, jax.random.key(seed),
                    jax.device_put(condition, batch_spec))
    return step, np.asarray(jax.device_get(images))[:num], labels[:num]


def load_run_config(workdir: str):
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise config_lib.ConfigError(f"{path} does not exist: is {workdir!r} a run directory?")
    return config_lib.from_json(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax sample", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a generative run's directory")
    parser.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--steps", type=int, help="sampling steps (diffusion, flows)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance weight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--captions", nargs="+", metavar="TEXT",
                        help="prompts of a text-to-image run, used in turn")
    parser.add_argument("--out", help="output directory (default WORKDIR/samples)")
    parser.add_argument("--metrics", action="store_true",
                        help="then evaluate the samples (vision-jax evaluate-samples on all "
                             "--num of them; use --num 2000) into WORKDIR/summary.json")
    args = parser.parse_args(argv)
    if args.num <= 0:
        parser.error(f"--num={args.num} must be positive")
    options = {k: v for k, v in (("steps", args.steps), ("guidance", args.guidance))
               if v is not None}
    try:
        config = load_run_config(args.workdir)
        step, images, labels = draw(config, args.workdir, num=args.num, seed=args.seed,
                                    captions=args.captions, **options)
    except (config_lib.ConfigError, ckpt_lib.CheckpointError, data.DatasetNotFoundError,
            TypeError, ValueError) as e:
        print(f"vision-jax sample: error: {e}", file=sys.stderr)
        return 2
    out = args.out or os.path.join(args.workdir, "samples")
    os.makedirs(out, exist_ok=True)
    pixels = to_uint8(images)
    from PIL import Image
    classes = len(set(labels.tolist()))
    columns = classes if classes > 1 else int(math.ceil(math.sqrt(len(pixels))))
    png = os.path.join(out, f"samples_{step}.png")
    Image.fromarray(image_grid(pixels, columns)).save(png)
    npz = os.path.join(out, f"samples_{step}.npz")
    np.savez(npz, arr_0=pixels, arr_1=labels)
    result = {"step": step, "num": len(pixels), "png": png, "npz": npz, **options}
    if args.metrics:
        from vision_jax.evaluate import samples as evaluate_samples
        try:
            metrics = evaluate_samples.evaluate_samples(
                pixels, labels, data_cfg=config.data, num=len(pixels), seed=args.seed,
                tag=f"samples_{step}", out_dir=out)
        except (data.DatasetNotFoundError, ValueError) as e:
            print(f"vision-jax sample: error: {e}", file=sys.stderr)
            return 2
        result["metrics"] = {"step": step, "npz": npz, **metrics}
        evaluate_samples.write_summary(args.workdir, result["metrics"])
    print(json.dumps(result))
    return 0
