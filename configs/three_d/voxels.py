"""Single-view 3-D: one 32x32 view of a `shapes3d` object -> its 16^3 occupancy grid.

    vision-jax datasets prepare shapes3d --variant objects --train-size 4000 --test-size 1000
    vision-jax train --config=configs/three_d/voxels.py --workdir=workdirs/voxels

Arguments: voxels (16 or 32: the grid's side; 32 needs its own prepared set,
`--voxels 32`), steps, runlocal (a few steps), seed.

2-D encoder of three stride-2 3x3 convolutions (16, 32, 64 channels), a
128-d code, a 4^3 x 32 volume, 2x2x2 stride-2 transposed convolutions to the grid and
per-voxel binary cross-entropy with positives weighted 2x (a few percent of
the voxels are occupied). The world frame is viewer aligned (the camera's
azimuth is 0), so one view determines the grid up to what it hides.
Adam 2e-3, cosine, 32 views per step, 1,500 steps; eval: mean per-object IoU
at probability 0.5 on 1,000 test objects.

## Lab note, 2026-12-04 (one seed; 2-core AMD EPYC VM shared by 4 agents, jax 0.10.2, CPU)

test IoU 0.711 (mean per object), 0.748 pooled over all test voxels;
424,297 params; 24 s training, 36 s wall. `voxels=32` not run. docs/3D.md.
"""

from vision_jax.config import parse_arg
from vision_jax.tasks.three_d import base_config, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, voxels=16, steps=1500, runlocal=False, seed=0)
    c = base_config("voxels", "objects", steps=a.steps, learning_rate=2e-3, seed=a.seed)
    c.data.shapes3d.voxels = a.voxels
    c.model = dict(name="voxel_net", channels=(16, 32, 64), latent=128, volume_channels=32)
    c.voxels = dict(pos_weight=2.0)
    c.batch_size = 32
    if a.runlocal:
        shrink_for_local(c, train_size=64, test_size=16)
        c.model.update(channels=(4, 8), latent=16, volume_channels=8)
    return c
