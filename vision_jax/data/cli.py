"""`vision-jax datasets list|prepare`: inspect and generate the built-in datasets.

    vision-jax datasets list [--data-dir D]
    vision-jax datasets prepare shapes [--data-dir D] [--train-size N] [--test-size N]
        [--resolution R] [--max-objects K] [--seed S] [--group-skew G]
    vision-jax datasets prepare digits [--data-dir D]
    vision-jax datasets prepare moving_shapes [--data-dir D] [--train-size N] [--test-size N]
        [--resolution R] [--frames T] [--seed S] [--motions all|translation]
    vision-jax datasets prepare shapes3d [--data-dir D] [--variant objects|scene]
        [--train-size N] [--test-size N] [--resolution R] [--voxels V] [--points N] [--seed S]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from vision_jax.data import moving_shapes, pipeline, shapes, shapes3d

_DESCRIPTIONS = {
    "shapes": "procedural scenes of coloured shapes; label = shape of the largest object "
              "(8 classes; boxes, masks, counts, captions, background groups)",
    "digits": "scikit-learn's 1,797 handwritten 8x8 digits (10 classes; 1,500 train / 297 test)",
    "moving_shapes": "clips of one moving shape; label = the motion (9 classes: 4 directions, "
                     "2 rotations, grow, shrink, recolor; one frame cannot tell)",
    "shapes3d": "rendered analytic 3-D shapes with cameras (objects: one shape, its voxels "
                "and surface points, 5 classes; scene: one fixed scene from many views)",
}
# The parameters of each generated dataset (its `data.<name>` config section).
_PARAMS = {"shapes": shapes.ShapesParams, "moving_shapes": moving_shapes.MovingShapesParams,
           "shapes3d": shapes3d.Shapes3DParams}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vision-jax datasets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="built-in datasets and what data_dir holds")
    listing.add_argument("--data-dir", default=pipeline.DEFAULT_DATA_DIR)
    prepare = commands.add_parser("prepare", help="generate a built-in dataset")
    prepare.add_argument("name", choices=pipeline.BUILTIN)
    prepare.add_argument("--data-dir", default=pipeline.DEFAULT_DATA_DIR)
    group = prepare.add_argument_group("shapes / moving_shapes parameters (defaults: the "
                                       "default config)")
    fields = {f.name: f for params in _PARAMS.values() for f in dataclasses.fields(params)}
    for field in fields.values():
        group.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default),
                           default=None, help=f"default {field.default}")
    return parser


def _prepared_variants(data_dir: str, name: str) -> list[str]:
    """Config names of `name` found under data_dir (for shapes: one per setting)."""
    root = os.path.join(data_dir, name)
    if not os.path.isdir(root):
        return []
    if name == "digits":
        return ["(default)"] if any(os.scandir(root)) else []
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def _list(args) -> int:
    print(f"data_dir: {args.data_dir}")
    for name in pipeline.BUILTIN:
        variants = _prepared_variants(args.data_dir, name)
        print(f"  {name:<7} {_DESCRIPTIONS[name]}")
        print(f"          prepared: {', '.join(variants) if variants else 'no'}")
    print("Other TFDS datasets work by name once prepared in array_record format in data_dir.")
    return 0


def _prepare(args) -> int:
    given = {f.name for params in _PARAMS.values() for f in dataclasses.fields(params)
             if getattr(args, f.name) is not None}
    valid = ({f.name for f in dataclasses.fields(_PARAMS[args.name])}
             if args.name in _PARAMS else set())
    if given - valid:
        print(f"vision-jax datasets: {sorted(given - valid)} do not apply to {args.name!r}",
              file=sys.stderr)
        return 2
    data_cfg = {"name": args.name, "data_dir": args.data_dir}
    if args.name in _PARAMS:
        data_cfg[args.name] = {key: getattr(args, key) for key in given}
    try:
        pipeline.prepare(data_cfg)
    except ValueError as e:  # bad parameters
        print(f"vision-jax datasets: {e}", file=sys.stderr)
        return 2
    info = pipeline.dataset_info(data_cfg)
    print(f"{info.name} ready in {args.data_dir}: {info.split_sizes}, "
          f"{info.num_classes} classes")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return _list(args) if args.command == "list" else _prepare(args)
