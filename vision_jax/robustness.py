"""`vision-jax attack`: how easily a trained classifier is fooled.

    vision-jax attack [--workdir=DIR] [--eps 0,1,2,4,8,16] [--norm linf|l2]
                      [--methods fgsm,pgd] [--steps 10] [--num 1000] [--fooling]
                      [--patch-sizes 4,8,12 --patch-target 0 --patch-steps 300]
                      [--out DIR/attacks]

Restores the run's newest checkpoint (its EMA parameters when it evaluates
with them) and measures, on the first `--num` examples of its eval split,
the accuracy under each attack of vision_jax/attacks.py at each budget:
the robustness curve. Budgets are in 1/255 of the pixel range (papers' units;
for L2 the same unit per unit of L2 norm). The attacks run through the
task's own sharded eval step (`config.adversarial.eval`), so every device
attacks its share of the batch. Writes, under --out:

  robustness.json   rows of (method, norm, eps, steps, accuracy), clean accuracy
  robustness.png    accuracy against eps, one line per attack

With --patch-sizes, also a universal adversarial patch per size (Brown et
al. 2017, the course's "toaster" sticker), trained with Adam to turn any
training image into --patch-target wherever it is pasted, then pasted at
random places on the eval images:

  patch.json        per size: area share and success rate (eval images of
                    other classes classified as the target)
  patch.png         the patches

With --fooling, also the course's demonstration (Szegedy et al. 2014): eight
correctly classified images, each pushed by a targeted PGD (L-inf,
--fooling-eps 8/255, --fooling-steps 100) to every other class, and the
perturbation's size:

  fooling.png       rows = images, columns = target classes (diagonal: the original)
  fooling.json      success rate and the mean/max L-inf norm of the changes, in 1/255
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from vision_jax import attacks, checkpoint as ckpt_lib, config as config_lib, data, sharding


def _attack_config(task, **overrides) -> ConfigDict:
    adv = ConfigDict(task.adversarial.to_dict())
    adv.update(train=False, eval=True, **overrides)
    return adv


def robustness_curve(config, workdir: str, *, eps: list[float], norm: str = "linf",
                     methods=("fgsm", "pgd"), steps: int = 10, num: int = 1000,
                     progress: bool = True) -> dict:
    """Accuracy under attack at every (method, eps) on the first ~num eval examples."""
    from tqdm.auto import tqdm

    from vision_jax import train
    mesh = sharding.make_mesh(dict(config.mesh))
    rules = sharding.rules_from_config(config.logical_rules)
    run, step, state = train.restore_workdir(config, workdir, mesh, rules)
    if config.task != "classification":
        raise config_lib.ConfigError(f"task {config.task!r}: attacks need a classifier")
    max_batches = max(1, -(-num // config.batch_size))
    rows, clean = [], None
    points = [(m, e) for m in methods for e in eps]
    for method, e in tqdm(points, desc="attack", unit="eps", disable=not progress):
        run.task.adversarial = _attack_config(run.task, method=method, norm=norm,
                                              eps=float(e), eval_steps=steps)
        out = train.evaluate(state, train.make_eval_fn(config, run, mesh, rules), run, mesh,
                             rules, config.data.eval_split, max_batches=max_batches)
        clean = out["accuracy"]
        rows.append({"method": method, "norm": norm, "eps": float(e),
                     "steps": 1 if method == "fgsm" else steps,
                     "accuracy": out["robust_accuracy"], "examples": out["examples"]})
    return {"workdir": workdir, "step": step, "clean_accuracy": clean, "rows": rows}


def plot_curves(results: list[tuple[str, dict]], path: str) -> None:
    """Accuracy against eps: one colour per (label, result), one line style per attack."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    styles = {"fgsm": "o--", "pgd": "o-"}
    for i, (label, result) in enumerate(results):
        for method in dict.fromkeys(r["method"] for r in result["rows"]):
            rows = [r for r in result["rows"] if r["method"] == method]
            name = method.upper() + (f"-{rows[0]['steps']}" if method == "pgd" else "")
            ax.plot([r["eps"] for r in rows], [100 * r["accuracy"] for r in rows],
                    styles[method], color=f"C{i}", label=f"{label}: {name}")
    norm = results[0][1]["rows"][0]["norm"]
    ax.set_xlabel(f"{'L-inf' if norm == 'linf' else 'L2'} budget eps (x 1/255)")
    ax.set_ylabel("accuracy under attack (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fooling_images(config, workdir: str, *, eps: float = 8.0, steps: int = 100,
                   count: int = 8) -> tuple[dict, np.ndarray]:
    """Targeted PGD from `count` correctly classified eval images to every class."""
    from vision_jax.explain import restore_task
    task, params, variables, step = restore_task(config, workdir, why="fooling images")

    def logits_fn(x):
        return task.predict(params, variables, x)

    classify = jax.jit(lambda x: jnp.argmax(logits_fn(x), -1))  # one compile per shape
    picked_x, picked_y = [], []
    for batch in task.eval_batches(config.data.eval_split, global_batch_size=config.batch_size,
                                   process_index=0, process_count=1):
        ok = np.asarray(classify(batch["image"])) == batch["label"]
        ok &= batch["mask"].astype(bool)
        picked_x += list(batch["image"][ok]); picked_y += list(batch["label"][ok])
        if len(picked_x) >= count:
            break
    x = np.stack(picked_x[:count]); y = np.asarray(picked_y[:count], np.int32)
    k = task.info.num_classes
    xs = np.repeat(x, k, 0)
    targets = np.tile(np.arange(k, dtype=np.int32), len(x))
    adv = jax.jit(lambda xs, t: attacks.pgd(
        logits_fn, xs, t, eps=attacks.to_model_units(eps), steps=steps, targeted=True,
        start="zero"))(xs, targets)
    adv = np.asarray(adv)
    hit = np.asarray(classify(adv)) == targets
    other = targets != np.repeat(y, k)
    linf = np.abs(adv - xs).reshape(len(xs), -1).max(-1) * 255.0 / 2.0
    result = {"workdir": workdir, "step": step, "eps": eps, "steps": steps,
              "images": int(len(x)), "success_rate": float(hit[other].mean()),
              "linf_mean": float(linf[other].mean()), "linf_max": float(linf[other].max())}
    # The diagonal shows the clean image (target == label: nothing to change).
    grid = np.where(other[:, None, None, None], adv, xs).reshape(len(x), k, *x.shape[1:])
    return result, grid


def adversarial_patches(config, workdir: str, *, sizes: list[int], target: int = 0,
                        steps: int = 300, learning_rate: float = 0.05,
                        num: int = 1000, seed: int = 0, progress: bool = True):
    """A universal patch per size, trained with Adam on training batches at random
    places, then pasted at random places on the first ~num eval images: the
    share of images not of the target class that it turns into the target."""
    import optax
    from tqdm.auto import tqdm

    from vision_jax.explain import restore_task
    task, params, variables, step = restore_task(config, workdir, why="adversarial patches")
    h, w, c = task.info.image_shape
    if not 0 <= target < task.info.num_classes:
        raise config_lib.ConfigError(f"--patch-target={target}: the run has "
                                     f"{task.info.num_classes} classes")

    def logits_fn(x):
        return task.predict(params, variables, x)

    tx = optax.adam(learning_rate)
    update = jax.jit(lambda p, o, x, r: attacks.patch_update(logits_fn, tx, p, o, x, r,
                                                             target=target))
    predict = jax.jit(lambda x, p, offsets: jnp.argmax(
        logits_fn(attacks.apply_patch(x, p, offsets)), -1))
    evals = [b for _, b in zip(range(max(1, -(-num // config.batch_size))), task.eval_batches(
        config.data.eval_split, global_batch_size=config.batch_size, process_index=0,
        process_count=1))]
    rows, patches = [], []
    for size in tqdm(sizes, desc="patch", unit="size", disable=not progress):
        if not 0 < size <= min(h, w):
            raise config_lib.ConfigError(f"patch size {size} does not fit {h}x{w} images")
        rng = jax.random.key(seed)
        patch = jax.random.uniform(jax.random.fold_in(rng, 2**31 - 1), (size, size, c), minval=-1.0,
                                   maxval=1.0)
        opt_state = tx.init(patch)
        batches = task.train_iterator(global_batch_size=config.batch_size, seed=seed,
                                      process_index=0, process_count=1)
        for i, batch in zip(range(steps), batches):
            patch, opt_state, _ = update(patch, opt_state, batch["image"],
                                         jax.random.fold_in(rng, i))
        hits = total = 0
        for j, batch in enumerate(evals):
            keep = batch["mask"].astype(bool) & (batch["label"] != target)
            offsets = attacks.random_offsets(jax.random.fold_in(rng, 10**6 + j),
                                             len(batch["image"]), h, size)
            pred = np.asarray(predict(batch["image"], patch, offsets))
            hits += int((pred[keep] == target).sum()); total += int(keep.sum())
        rows.append({"size": size, "area": size * size / (h * w), "target": target,
                     "success_rate": hits / max(total, 1), "examples": total})
        patches.append(np.asarray(patch))
    return {"workdir": workdir, "step": step, "steps": steps, "rows": rows}, patches


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vision-jax attack", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", help="a classification run's directory (default: the "
                                          "in-house backbone, vision_jax/backbone.py)")
    parser.add_argument("--eps", default="0,1,2,4,8,16",
                        help="comma-separated budgets in 1/255 of the pixel range")
    parser.add_argument("--norm", default="linf", choices=attacks.NORMS)
    parser.add_argument("--methods", default="fgsm,pgd")
    parser.add_argument("--steps", type=int, default=10, help="PGD steps (default 10)")
    parser.add_argument("--num", type=int, default=1000,
                        help="eval examples to attack (rounded up to whole batches)")
    parser.add_argument("--fooling", action="store_true",
                        help="also the targeted fooling-images demonstration")
    parser.add_argument("--fooling-eps", type=float, default=8.0,
                        help="its L-inf budget in 1/255 (default 8)")
    parser.add_argument("--fooling-steps", type=int, default=100,
                        help="its targeted PGD steps (default 100)")
    parser.add_argument("--patch-sizes", default="",
                        help="also train a universal adversarial patch of each side length "
                             "(comma-separated pixels, e.g. 4,8,12)")
    parser.add_argument("--patch-target", type=int, default=0, help="the patch's class")
    parser.add_argument("--patch-steps", type=int, default=300,
                        help="Adam steps per patch on training batches (default 300)")
    parser.add_argument("--out", help="output directory (default WORKDIR/attacks)")
    args = parser.parse_args(argv)
    try:
        eps = [float(e) for e in args.eps.split(",") if e.strip()]
    except ValueError:
        parser.error(f"--eps={args.eps!r}: expected comma-separated numbers")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not eps or any(e < 0 for e in eps):
        parser.error(f"--eps={args.eps!r}: budgets must be >= 0")
    if bad := [m for m in methods if m not in ("fgsm", "pgd")]:
        parser.error(f"--methods: unknown {bad}; choose from fgsm, pgd")
    if args.num <= 0 or args.steps <= 0 or args.patch_steps <= 0:
        parser.error("--num, --steps and --patch-steps must be positive")
    try:
        sizes = [int(v) for v in args.patch_sizes.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--patch-sizes={args.patch_sizes!r}: expected comma-separated integers")
    from vision_jax.sample import load_run_config, to_uint8, image_grid
    from vision_jax import backbone
    out = args.out or (os.path.join(args.workdir, "attacks") if args.workdir else "attacks")
    try:
        args.workdir = backbone.resolve_workdir(args.workdir)
        config = load_run_config(args.workdir)
        result = robustness_curve(config, args.workdir, eps=eps, norm=args.norm,
                                  methods=methods, steps=args.steps, num=args.num)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "robustness.json"), "w") as f:
            json.dump(result, f, indent=1)
        label = os.path.basename(os.path.normpath(args.workdir))
        plot_curves([(label, result)], os.path.join(out, "robustness.png"))
        print(f"clean accuracy {100 * result['clean_accuracy']:.2f}% on "
              f"{result['rows'][0]['examples']} examples (step {result['step']})")
        for r in result["rows"]:
            print(f"  {r['method']:>4} {r['norm']} eps={r['eps']:g}/255: "
                  f"{100 * r['accuracy']:.2f}%")
        if args.fooling:
            fool, grid = fooling_images(config, args.workdir, eps=args.fooling_eps,
                                         steps=args.fooling_steps)
            with open(os.path.join(out, "fooling.json"), "w") as f:
                json.dump(fool, f, indent=1)
            from PIL import Image
            n, k = grid.shape[:2]
            Image.fromarray(image_grid(to_uint8(grid.reshape(n * k, *grid.shape[2:])), k)
                            ).save(os.path.join(out, "fooling.png"))
            print(f"fooling: {100 * fool['success_rate']:.1f}% of targeted attacks succeed, "
                  f"L-inf mean {fool['linf_mean']:.2f}/255, max {fool['linf_max']:.2f}/255")
        if sizes:
            patch, images = adversarial_patches(config, args.workdir, sizes=sizes,
                                                target=args.patch_target,
                                                steps=args.patch_steps, num=args.num)
            with open(os.path.join(out, "patch.json"), "w") as f:
                json.dump(patch, f, indent=1)
            from PIL import Image
            side = max(p.shape[0] for p in images)
            tiles = np.stack([np.pad(p, ((0, side - p.shape[0]), (0, side - p.shape[1]),
                                         (0, 0)), constant_values=1.0) for p in images])
            Image.fromarray(image_grid(to_uint8(tiles), len(tiles), scale=8)).save(
                os.path.join(out, "patch.png"))
            for r in patch["rows"]:
                print(f"patch {r['size']}px ({100 * r['area']:.1f}% of the image) -> class "
                      f"{r['target']}: {100 * r['success_rate']:.1f}% of "
                      f"{r['examples']} images")
    except (config_lib.ConfigError, ckpt_lib.CheckpointError, data.DatasetNotFoundError) as e:
        print(f"vision-jax attack: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
