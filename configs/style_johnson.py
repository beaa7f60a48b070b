"""Feed-forward style transfer (Johnson et al. 2016): a transformation network
trained with the perceptual loss through the frozen default backbone
(configs/backbone.py, trained on first use), on `shapes` scenes as content,
towards one style image (task `style_transfer`, vision_jax/tasks/style.py).

    vision-jax train --config=configs/style_johnson.py:style=coffee \\
        --workdir=workdirs/johnson_coffee
    vision-jax synthesize --what johnson --workdir=workdirs/johnson_coffee \\
        --content chelsea --size 128

Arguments: style (a name from synthesis.PHOTOS or TEXTURES, or an image
file; default coffee), style_size (default 128: the size the comparison with
Gatys et al. runs at, so the textures have the same scale in pixels), steps
(default 300), backbone (a classification run directory; default: the
in-house backbone), runlocal (a 20-step smoke run).

The paper's recipe: 256x256 COCO crops, batch 4, 40,000 Adam steps at
1e-3, network widths 32/64/128 with 5 residual blocks. Here: 32x32 shapes
scenes, batch 8, Adam at 1e-3, widths 16/32/64 with 3 residual blocks, and the
loss weights of `vision-jax synthesize --what style` (content 1, style 10,
TV 0.1, on relative errors) so the two methods optimise the same objective.

Lab note, 2026-12-03 (the default, style=coffee): 2-core AMD EPYC VM shared
with four other agents' jobs (load average 30-45: wall times are upper
bounds), jax 0.10.2, float32, one CPU device, the cached default backbone
(72.69%). 300 steps of 8 (2,400 scenes), 276,131 parameters: training loss
5.40 at step 20 -> 1.2-1.4 over steps 200-300 (still falling); eval on 256
test scenes total 1.21 = content 0.648 + 10 x style 0.056 + 0.1 x TV 0.040;
275 s of training + 62 s compiling. Applied in one pass: 0.016 s on a 32x32
scene, 0.20 s on the 128x128 cat, against 81 s and 63 s of L-BFGS on the same
objective; the network keeps much less content (relative error 0.88 on the
scene, 0.74 on the cat, against L-BFGS's 0.32 and 0.22). Tables and figures:
docs/SYNTHESIS.md. Continued to steps=1200 (same workdir copied; constant
learning rate): eval total 0.867 (content 0.603, style 0.026), 545 s of
training in all; on the scene total 1.05 (below L-BFGS's 1.22 at 52
evaluations), on the cat 2.97 (worse than at 300 steps: it fits the scenes).
"""

from vision_jax.config import base_config, parse_arg, shrink_for_local


def get_config(arg=None):
    a = parse_arg(arg, style="coffee", style_size=128, steps=300, backbone="", runlocal=False)
    c = base_config()
    c.task = "style_transfer"
    c.data.name = "shapes"  # the cached 32x32 default scenes
    c.model = dict(name="transform_net", widths=(16, 32, 64), residual_blocks=3,
                   norm="instance")
    c.style = dict(image=a.style, size=a.style_size, backbone=a.backbone,
                   content_layer="", style_layers="", content_weight=1.0,
                   style_weight=10.0, tv_weight=0.1, eval_examples=256)
    c.batch_size = 8
    c.total_steps = a.steps
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-3
    c.optimizer.weight_decay = 0.0
    c.optimizer.grad_clip_norm = 0.0
    c.schedule.name = "constant"
    c.log_every_steps = 20
    c.eval_every_steps = 0
    c.checkpoint.every_steps = 100
    c.checkpoint.async_save = False
    if a.runlocal:
        c = shrink_for_local(c)
        c.eval_every_steps = 0
    return c
