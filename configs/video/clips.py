"""Video classification on `moving_shapes`: which models can see motion?

    vision-jax train --config=configs/video/clips.py:model=c3d --workdir=workdirs/video_c3d

Arguments: model=single_frame|late_fusion|early_fusion|c3d|r2plus1d|two_stream|
two_stream_flow|timesformer (vision_jax/models/video.py; the two two-stream
models differ in their temporal stream's input: frame differences, or an
in-model Lucas-Kanade flow), motions=all|translation (9 motion classes, or
the 4 directions only), seed, runlocal (a 20-step smoke run on 256 clips).

8-frame 32x32 clips, 9 classes (4 translations, 2 rotations, grow, shrink,
recolor; chance 11.1%); the frame a single-frame model sees is independent of
the label by construction (vision_jax/data/moving_shapes.py), so it must stay
at chance. Every model is the CPU-sized one below (6k-43k parameters),
trained with AdamW (lr 2e-3, 50 warmup steps, cosine) for the same 400 steps
of 32 clips (3.2 epochs of 4,000 training clips), evaluated on 1,000 test clips.
A full-size variant is the same command with more data and steps, e.g.
`--config.data.moving_shapes.train_size=50000 --config.total_steps=10000`
(not run).

## Lab note, 2026-12-04 (evening): three seeds of every model

Seeds 1 and 2 of every model, and seed 0 of c3d and r2plus1d, on the 2-core
AMD EPYC VM, two runs at a time, jax 0.10.2, CPU (16 runs in 13 min; training
8 s for single_frame to 245 s for r2plus1d). Test top-1, seeds 0 / 1 / 2:
single_frame 10.5 / 11.1 / 9.8%, early_fusion 48.2 / 39.5 / 30.2%,
late_fusion 68.0 / 69.0 / 64.6%, c3d 54.3 / 49.5 / 40.0%,
r2plus1d 56.3 / 37.8 / 46.0%, two_stream 68.3 / 62.9 / 66.6%,
two_stream_flow 96.2 / 95.9 / 96.7%, timesformer 11.0 / 10.7 / 11.6%.
Table and reading: docs/VIDEO.md.

## Lab note, 2026-12-03 (one seed; the machine was badly overloaded)

    vision-jax datasets prepare moving_shapes --train-size 4000 --test-size 1000 [--motions translation]
    vision-jax train --config=configs/video/clips.py:model=M[,motions=translation] --workdir=...

2-core AMD EPYC VM shared by 5 agents, load average 30-46 throughout (so
every process got a few percent of a core), jax 0.10.2, float32, one CPU
device, all runs at nice 10, up to four of them at once. Wall times are
therefore large upper bounds, not what an idle machine takes; the idle
15-minute budget for all six models could not be measured here. Seed 0 only:
no time was left for a second seed.

| model | params | forward FLOPs | test top-1, 9 classes (chance 11.1%) | training (compile) | command wall |
|---|---|---|---|---|---|
| single_frame | 6,329 | 1.5M | 10.5% | 343 s (57 s) | 624 s |
| early_fusion | 7,841 | 4.5M | 48.2% | 277 s (38 s) | 504 s |
| late_fusion (concat) | 42,905 | 12.1M | 68.0% | 1,523 s (96 s) | ~1,700 s |
| timesformer (patch 8) | 32,969 | 9.3M | 11.0% (loss stayed at ln 9) | 950 s (173 s) | 1,379 s |
| c3d | 18,281 | 29.4M | not finished (4 clips/s under load; stopped) | - | - |
| r2plus1d | - | - | not run (no time left) | - | - |

Direction classes only (`motions=translation`, 4 classes, chance 25%):
single_frame 26.7% (1,000 test clips; 1.2 binomial SE above chance: it
sits at chance, as the construction forces), early_fusion 98.7%.

## Lab note, 2026-12-04: the two-stream models (seeds 0 and 1)

    vision-jax train --config=configs/video/clips.py:model=two_stream[,seed=1] --workdir=...
    vision-jax train --config=configs/video/clips.py:model=two_stream_flow[,seed=1] --workdir=...

Same data (4,000 / 1,000 clips, 9 classes), steps and optimizer as above; same
2-core AMD EPYC VM, now shared by 4 agents (load average 9-10), one CPU
device, nice 10, one run at a time; train step compiled in 6.1 s.

| model | params | forward FLOPs | test top-1, seed 0 / seed 1 | training (seed 0 / 1) | command wall |
|---|---|---|---|---|---|
| two_stream (frame differences) | 13,954 | 5.6M | 68.3% / 62.9% | 20 s / 18 s | 49 s / 42 s |
| two_stream_flow (Lucas-Kanade) | 13,450 | 5.9M | 96.2% / 95.9% | 51 s / 49 s | 79 s / 82 s |

The in-model flow makes the temporal stream's job easy: 96% against 68% for
late fusion above, and 65% for raw frame differences, which early fusion's
first convolution could compute itself. Two seeds, not the lead's GPU runs.
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local

MODELS = {
    "single_frame": dict(name="single_frame", channels=(8, 16, 32)),
    "late_fusion": dict(name="late_fusion", channels=(8, 16, 32), pool="concat"),
    "early_fusion": dict(name="early_fusion", channels=(8, 16, 32)),
    "c3d": dict(name="c3d", channels=(8, 16, 32)),
    "r2plus1d": dict(name="r2plus1d", channels=(8, 16, 32)),
    "two_stream": dict(name="two_stream", channels=(8, 16, 32), motion="difference"),
    "two_stream_flow": dict(name="two_stream", channels=(8, 16, 32), motion="flow"),
    "timesformer": dict(name="timesformer", patch=8, width=32, depth=2, num_heads=4,
                        mlp_dim=64),
}


def get_config(arg=None):
    a = parse_arg(arg, model="c3d", motions="all", seed=0, runlocal=False)
    if a.model not in MODELS:
        raise ValueError(f"model={a.model!r}: expected one of {sorted(MODELS)}")
    c = base_config()
    c.seed = a.seed
    c.model = dict(MODELS[a.model])
    c.batch_size = 32
    c.total_steps = 400
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.weight_decay = 1e-4
    c.schedule.warmup_steps = 50
    c.log_every_steps = 50
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 400
    if a.runlocal:
        shrink_for_local(c)
        c.total_steps, c.batch_size = 20, 32
    # After shrink_for_local, which resets the data to `shapes`.
    c.data.name = "moving_shapes"
    c.data.image_size = 32
    c.data.moving_shapes = dict(resolution=32, frames=8, train_size=4_000, test_size=1_000,
                                seed=0, motions=a.motions)
    if a.runlocal:
        c.data.moving_shapes.train_size, c.data.moving_shapes.test_size = 256, 64
    return c
