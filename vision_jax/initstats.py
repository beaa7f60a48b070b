"""`vision-jax initstats`: are the activations nicely scaled at init, in every layer?

The CS231n experiment (Stanford CS231n, "Training Neural Networks", weight
initialisation): push one batch through a freshly initialised deep network and
look at the activations after each nonlinearity. With tanh and weights drawn
from N(0, 0.01^2) each layer multiplies the scale by about 0.01 * sqrt(fan_in),
so the activations collapse towards zero (and with them the gradients of the
weights); Xavier initialisation (Glorot & Bengio 2010) keeps them scaled. With
ReLU, which zeroes half of its inputs, Xavier halves the variance at every
layer and He initialisation (He et al. 2015), twice the variance, keeps it.
configs/init_stats.py is the classic 10-layer MLP, with the numbers it gives.

    vision-jax initstats --config=configs/init_stats.py --config.model.kernel_init=small_normal
    vision-jax initstats --config=configs/mlp.py --config.model.kernel_init=small_normal \\
        --config.model.activation=tanh --plot=tanh_small.png
    vision-jax initstats --config=configs/default.py --config.model.norm=batch

Model options that the config file does not set (such as `kernel_init` in
configs/mlp.py) may still be overridden: their defaults are filled in first.

The forward pass runs in training mode by default, as the first training step
would (batch norm then uses the batch's statistics; dropout, DropConnect and
fractional pooling draw from a fixed key); `--eval-mode` runs it as evaluation
does. The inputs are a batch of real images when that is cheap (the built-in
`shapes` scenes are rendered directly; another dataset is read if prepared),
else standard-normal images; the output says which. Models report their
activations by sowing them into the 'intermediates' collection under names
ending in '_act' (the MLP and the CNN do).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import sys
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np
from ml_collections import ConfigDict

from vision_jax import config as config_lib
from vision_jax import models

INPUTS = ("auto", "normal")
ACT_SUFFIX = "_act"
# A bounded activation counts as saturated within 0.01 of a bound, where its
# gradient has fallen to a few percent of its peak (tanh: 1 - a^2 < 0.02;
# sigmoid: a (1 - a) < 0.01, against 0.25 at the centre).
SATURATED = {
    "tanh": lambda a: np.abs(a) > 0.99,
    "sigmoid": lambda a: (a < 0.01) | (a > 0.99),
}


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """Statistics of one layer's activations over the batch (and positions)."""

    name: str
    shape: tuple[int, ...]
    mean: float
    std: float
    zeros: float  # fraction exactly 0 (inactive ReLUs)
    saturated: float | None  # fraction saturated; None for unbounded activations


def activations(model: nn.Module, images, *, seed: int = 0,
                train: bool = True) -> dict[str, np.ndarray]:
    """Initialises `model` with `seed` and returns, in network order, the
    activations it sows under names ending in '_act' for one forward pass of
    `images` (the suffix dropped)."""
    init_rng, noise_rng = jax.random.split(jax.random.PRNGKey(seed))
    variables = model.init(init_rng, images[:1], train=False)
    _, state = model.apply(variables, images, train=train, rngs={"dropout": noise_rng},
                           mutable=["intermediates", "batch_stats"])
    sown = state.get("intermediates", {})
    out = {k[:-len(ACT_SUFFIX)]: np.asarray(v[0], np.float64)
           for k, v in sown.items() if k.endswith(ACT_SUFFIX)}
    if not out:
        raise ValueError(f"{type(model).__name__} sows no activations (names ending in "
                         f"{ACT_SUFFIX!r} in 'intermediates'); initstats supports the models "
                         "that do: 'mlp' and 'cnn'")
    return out


def layer_stats(acts: Mapping[str, np.ndarray], activation: str | None = None) -> list[LayerStats]:
    """Per-layer statistics; `activation` (a name of layers.ACTIVATIONS) decides
    whether saturation is counted."""
    saturated = SATURATED.get(activation)
    return [LayerStats(name=name, shape=tuple(a.shape), mean=float(a.mean()),
                       std=float(a.std()), zeros=float(np.mean(a == 0)),
                       saturated=None if saturated is None else float(np.mean(saturated(a))))
            for name, a in acts.items()]


# ---------------------------------------------------------------------------
# From a config
# ---------------------------------------------------------------------------

def with_model_defaults(config: ConfigDict) -> ConfigDict:
    """`config` with every option of its model present (the model's defaults
    where the config is silent), so that the printout names them all."""
    config_lib.add_model_options(config.model)
    return config


def _shapes_images(data_cfg: ConfigDict, split: str, count: int) -> np.ndarray:
    """The first `count` scenes of `split`, rendered directly (each is a pure
    function of its index, so nothing needs preparing) and normalised as the
    pipeline does."""
    import PIL.Image

    from vision_jax.data import augment, shapes

    params = shapes.ShapesParams.from_mapping(data_cfg.shapes)
    images = []
    for i in range(count):
        png = shapes.render_example(params, split, i)["image"]
        image = np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB"))
        images.append(augment.normalize(augment.resize(image, data_cfg.image_size)))
    return np.stack(images)


def input_batch(config: ConfigDict, batch_size: int, inputs: str = "auto",
                seed: int = 0) -> tuple[np.ndarray, int, str]:
    """(images, num_classes, description) for the config's dataset.

    'auto' uses real images when cheap: `shapes` scenes are rendered, another
    dataset is read if prepared. Otherwise, or with 'normal', the images are
    standard normal; the class count then only sizes the head, whose outputs
    are not among the statistics.
    """
    from vision_jax import data as data_lib  # TFDS and Grain: only when reading data

    if inputs not in INPUTS:
        raise ValueError(f"initstats: inputs={inputs!r} is not supported; "
                         f"valid choices: {list(INPUTS)}")
    data_cfg = config.data
    size = data_cfg.image_size
    if inputs == "auto" and data_cfg.name == "shapes":
        from vision_jax.data import shapes
        split = data_cfg.eval_split if data_cfg.eval_split in ("train", "test") else "test"
        return _shapes_images(data_cfg, split, batch_size), len(shapes.SHAPES), (
            f"{batch_size} 'shapes' {split} images (rendered), in [-1, 1]")
    reason = "--inputs=normal"
    if inputs == "auto":
        try:
            info = data_lib.dataset_info(data_cfg)
            batch = next(iter(data_lib.make_eval_batches(
                data_cfg, split=data_cfg.eval_split, global_batch_size=batch_size,
                process_index=0, process_count=1)))
            return (np.asarray(batch["image"], np.float32), info.num_classes,
                    f"{batch_size} {data_cfg.name!r} {data_cfg.eval_split} images, in [-1, 1]")
        except data_lib.DatasetNotFoundError:
            reason = f"dataset {data_cfg.name!r} is not prepared"
    images = np.random.default_rng(seed).standard_normal((batch_size, size, size, 3))
    return (images.astype(np.float32), 10,
            f"{batch_size} standard-normal images {size}x{size}x3 ({reason})")


def stats_from_config(config: ConfigDict, *, batch_size: int = 256, inputs: str = "auto",
                      seed: int = 0, train: bool = True):
    """(per-layer stats, activations, description of the inputs) of the config's model."""
    images, num_classes, described = input_batch(config, batch_size, inputs, seed)
    model = models.build_model(with_model_defaults(config).model, num_classes=num_classes)
    acts = activations(model, images, seed=seed, train=train)
    return layer_stats(acts, getattr(model, "activation", None)), acts, described


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def format_table(stats: Sequence[LayerStats]) -> str:
    width = max(len("layer"), *(len(s.name) for s in stats))
    lines = [f"{'layer':<{width}}  {'shape':<20} {'mean':>10} {'std':>10} {'zeros':>7} "
             f"{'saturated':>9}"]
    for s in stats:
        sat = "-" if s.saturated is None else f"{100 * s.saturated:.1f}%"
        lines.append(f"{s.name:<{width}}  {str(list(s.shape)):<20} {s.mean:>10.3g} "
                     f"{s.std:>10.3g} {100 * s.zeros:>6.1f}% {sat:>9}")
    return "\n".join(lines)


def plot_histograms(acts: Mapping[str, np.ndarray], stats: Sequence[LayerStats], path: str,
                    title: str = "") -> None:
    """The course's figure: std per layer, then a histogram of every layer's
    activations, all over the same range so that a collapse shows as a spike."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(stats) + 1
    cols = min(panels, 6)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.3 * rows), squeeze=False)
    axes = axes.ravel()
    axes[0].plot(range(len(stats)), [s.std for s in stats], marker="o")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("layer")
    axes[0].set_title("std of activations")
    lo = min(float(a.min()) for a in acts.values())
    hi = max(float(a.max()) for a in acts.values())
    for ax, s in zip(axes[1:], stats):
        ax.hist(acts[s.name].ravel(), bins=50, range=(lo, hi), color="tab:blue")
        ax.set_title(f"{s.name}\nmean {s.mean:.2g}, std {s.std:.2g}", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes[panels:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _describe_model(model_cfg: ConfigDict) -> str:
    return " ".join([str(model_cfg.name)] + [f"{k}={v}" for k, v in model_cfg.items()
                                             if k != "name"])


def _add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=256, help="images in the batch")
    parser.add_argument("--inputs", choices=INPUTS, default="auto",
                        help="auto: real images when cheap, else standard normal")
    parser.add_argument("--seed", type=int, default=0, help="of the initialisation and inputs")
    parser.add_argument("--eval-mode", action="store_true",
                        help="forward as evaluation does (batch norm's running averages)")
    parser.add_argument("--plot", default=None, help="save per-layer histograms to this PNG")


def main(argv: list[str]) -> int:
    try:
        config, flags = config_lib.parse_config_args(
            argv, "vision-jax initstats", extra=_add_flags, needs_workdir=False,
            description=__doc__.split("\n")[0])
        config = with_model_defaults(config)
        stats, acts, described = stats_from_config(
            config, batch_size=flags.batch, inputs=flags.inputs, seed=flags.seed,
            train=not flags.eval_mode)
    except ValueError as e:  # ConfigError and the models' option errors
        print(f"vision-jax initstats: error: {e}", file=sys.stderr)
        return 2
    mode = "evaluation mode" if flags.eval_mode else "training mode, as the first step"
    print(f"model:   {_describe_model(config.model)}\ninputs:  {described}\n"
          f"forward: {mode}, seed {flags.seed}\n")
    print(format_table(stats))
    if flags.plot:
        plot_histograms(acts, stats, flags.plot, title=_describe_model(config.model))
        print(f"\nhistograms: {flags.plot}")
    return 0
