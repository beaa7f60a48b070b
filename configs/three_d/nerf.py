"""NeRF on the `shapes3d` scene: PSNR on held-out views against the number of training views.

    vision-jax datasets prepare shapes3d --variant scene --train-size 32 --test-size 16
    vision-jax train --config=configs/three_d/nerf.py:views=8 --workdir=workdirs/nerf_v8

Arguments: views (training views: the first `views` of the 32 prepared ones,
`data.num_train_examples`), steps, full (the full-size variant below),
runlocal (a few steps on a tiny model), seed.

CPU variant (the default): 32x32 views of the fixed five-object scene
(vision_jax/data/shapes3d.py), cameras on the upper hemisphere at distance 4;
a field of 4 x 64 ReLU layers on 6 positional-encoding frequencies, separate
coarse and fine networks, 32 stratified + 32 importance samples per ray in
[2.5, 5.5], 8 views x 64 random rays per step, Adam 5e-3 with cosine decay.
Eval: every pixel of the 16 held-out test views.

Full-size variant (`full`, not run): 64x64 views, 100 training views, 8 x 128
layers, 64 + 128 samples, 16 views x 256 rays per step, 20,000 steps:

    vision-jax datasets prepare shapes3d --variant scene --resolution 64 --train-size 100 --test-size 16
    vision-jax train --config=configs/three_d/nerf.py:full --workdir=workdirs/nerf_full

## Lab note, 2026-12-04 (one seed per row; 2-core AMD EPYC VM shared by 4 agents, jax 0.10.2, CPU)

    vision-jax train --config=configs/three_d/nerf.py:views=V --workdir=workdirs/nerf/vV

held-out PSNR (fine pass, 16 test views) by training views: 2: 15.92 dB,
4: 18.19, 8: 26.36, 16: 27.07, 32: 27.84. 500 steps took 69-74 s of
training at low load (v4, v16) and up to 479 s under load 10-20 (v2, v8):
within the 15-minute budget either way. docs/3D.md has the table and the
orbit GIF. The full-size variant was not run.
"""

from vision_jax.config import parse_arg
from vision_jax.tasks.three_d import base_config, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, views=8, steps=500, full=False, runlocal=False, seed=0)
    c = base_config("nerf", "scene", steps=a.steps, learning_rate=5e-3, seed=a.seed,
                    train_size=32, test_size=16)
    c.data.num_train_examples = a.views
    c.model = dict(name="nerf_field", width=64, depth=4, num_freqs=6)
    c.nerf = dict(near=2.5, far=5.5, coarse_samples=32, fine_samples=32, rays_per_view=64,
                  fine_network=True, chunk=256)
    c.batch_size = 8  # views per step (repeated when there are fewer training views)
    c.optimizer.grad_clip_norm = 0.0
    c.schedule.end_factor = 0.05
    if a.full:
        c.data.shapes3d.update(resolution=64, train_size=100)
        c.data.image_size = 64
        c.data.num_train_examples = -1
        c.model.update(width=128, depth=8, num_freqs=8)
        c.nerf.update(coarse_samples=64, fine_samples=128, rays_per_view=256, chunk=1024)
        c.batch_size = 16
        c.total_steps = c.checkpoint.every_steps = 20_000
        c.optimizer.learning_rate = 5e-4
    if a.runlocal:
        shrink_for_local(c, train_size=8, test_size=8)
        c.data.num_train_examples = -1
        c.model.update(width=16, depth=2, num_freqs=2)
        c.nerf.update(coarse_samples=8, fine_samples=8, rays_per_view=16, chunk=256)
    return c
