"""Video classification on `moving_shapes`: which models can see motion?

    vision-jax train --config=configs/video/clips.py:model=c3d --workdir=workdirs/video_c3d

Arguments: model=single_frame|late_fusion|early_fusion|c3d|r2plus1d|timesformer
(vision_jax/models/video.py), motions=all|translation (9 motion classes, or
the 4 directions only), seed, runlocal (a 20-step smoke run on 256 clips).

8-frame 32x32 clips, 9 classes (4 translations, 2 rotations, grow, shrink,
recolor; chance 11.1%); the frame a single-frame model sees is independent of
the label by construction (vision_jax/data/moving_shapes.py), so it must stay
at chance. Every model is the CPU-sized one below (20k-130k parameters),
trained with AdamW for the same number of steps.

Results: in progress.
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local

MODELS = {
    "single_frame": dict(name="single_frame", channels=(16, 32, 64)),
    "late_fusion": dict(name="late_fusion", channels=(16, 32, 64), pool="concat"),
    "early_fusion": dict(name="early_fusion", channels=(16, 32, 64)),
    "c3d": dict(name="c3d", channels=(16, 32, 64)),
    "r2plus1d": dict(name="r2plus1d", channels=(16, 32, 64)),
    "timesformer": dict(name="timesformer", patch=4, width=64, depth=2, num_heads=4,
                        mlp_dim=128),
}


def get_config(arg=None):
    a = parse_arg(arg, model="c3d", motions="all", seed=0, runlocal=False)
    if a.model not in MODELS:
        raise ValueError(f"model={a.model!r}: expected one of {sorted(MODELS)}")
    c = base_config()
    c.seed = a.seed
    c.model = dict(MODELS[a.model])
    c.batch_size = 64
    c.total_steps = 600
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 50
    c.log_every_steps = 50
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 600
    if a.runlocal:
        shrink_for_local(c)
        c.total_steps, c.batch_size = 20, 32
    # After shrink_for_local, which resets the data to `shapes`.
    c.data.name = "moving_shapes"
    c.data.image_size = 32
    c.data.moving_shapes = dict(resolution=32, frames=8, train_size=10_000, test_size=2_000,
                                seed=0, motions=a.motions)
    if a.runlocal:
        c.data.moving_shapes.train_size, c.data.moving_shapes.test_size = 256, 64
    return c
