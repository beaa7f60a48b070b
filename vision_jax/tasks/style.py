"""Feed-forward style transfer (Johnson et al. 2016, "Perceptual Losses for
Real-Time Style Transfer and Super-Resolution"): a transformation network
(vision_jax/models/transform_net.py) trained so that one forward pass does
what Gatys et al.'s optimisation does for one image.

The loss is the perceptual loss of vision_jax/synthesis.py (`perceptual_loss`),
through a frozen feature network: content error at one layer against the
input's own features, Gram-matrix style error at several layers against one
style image, and total variation of the output. The feature network is the
default backbone (vision_jax/backbone.py, trained on first use) or any
classification run (`config.style.backbone`); its parameters are held by the
task as constants of the loss, so the trainer neither updates nor checkpoints
them. They are loaded when the loss is first traced, so building the task
(abstract init, config tests) reads or trains nothing.

Content images are the config's dataset (the built-in `shapes` scenes by
default: 32x32, no download). The style image is a name (`synthesis.PHOTOS`
from scikit-image, `synthesis.TEXTURES`) or a file, resized to
`config.style.size`. Eval reports the three parts of the loss on the first
`config.style.eval_examples` eval images.

    task.stylize(params, images) -> images, one pass, any height and width
"""

from __future__ import annotations

import functools
import types

import jax
import numpy as np

from vision_jax import config as config_lib
from vision_jax.models.transform_net import TransformNet
from vision_jax.tasks.base import Task


class JohnsonStyle(Task):
    score = "loss"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        if config.model.get("name") != "transform_net":
            raise config_lib.ConfigError(f"task 'style_transfer' trains model 'transform_net', "
                                         f"not {config.model.get('name')!r}")
        options = {k: v for k, v in config.model.items() if k != "name"}
        try:
            self.model = TransformNet(**options, dtype=self.dtype, param_dtype=self.param_dtype)
        except (TypeError, ValueError) as e:
            raise config_lib.ConfigError(f"config.model is not valid: {e}") from None
        s = config.style
        if s.size < 8 or s.eval_examples < 1 or min(s.content_weight, s.style_weight,
                                                      s.tv_weight) < 0:
            raise config_lib.ConfigError(
                f"config.style: size={s.size} must be >= 8, eval_examples={s.eval_examples} "
                f">= 1 and the weights >= 0")

    @functools.cached_property
    def frozen(self) -> types.SimpleNamespace:
        """The feature network and the style targets, loaded once. The first use is
        usually inside a trace (the trainer traces the loss for its FLOP count):
        the restore is evaluated eagerly all the same, since a checkpoint read
        under a trace fails (and the checkpointer would set it aside as unreadable)."""
        with jax.ensure_compile_time_eval():
            return self._load_frozen()

    def _load_frozen(self) -> types.SimpleNamespace:
        from vision_jax import backbone, synthesis
        from vision_jax.explain import restore_classifier
        from vision_jax.sample import load_run_config
        s = self.config.style
        workdir = backbone.resolve_workdir(s.backbone or None)
        model, params, model_state, _ = restore_classifier(
            load_run_config(workdir), workdir, why="the perceptual loss's features")
        features_fn = synthesis.layer_features(model, {"params": params, **model_state})
        content_layer, style_layers = synthesis.style_layers(
            features_fn, (1, *self.info.image_shape), content=s.content_layer,
            style=[n.strip() for n in s.style_layers.split(",") if n.strip()])
        style = synthesis.load_image(s.image, s.size, self.info.image_shape[-1])
        grams = jax.device_get(jax.jit(
            lambda x: synthesis.style_grams(features_fn, x, style_layers))(style))
        return types.SimpleNamespace(
            workdir=workdir, features_fn=features_fn, content_layer=content_layer,
            style_layers=style_layers, style=style, grams=grams,
            weights=(float(s.content_weight), float(s.style_weight), float(s.tv_weight)))

    def init(self, rng, batch):
        return self.model.init(rng, batch["image"])["params"], {}

    def stylize(self, params, images):
        """The transformation network's output for `images` [B, H, W, C] in [-1, 1]."""
        return self.model.apply({"params": params}, images)

    def loss(self, params, variables, batch, rng, group=None):
        from vision_jax import synthesis
        f = self.frozen
        content = batch["image"]
        target = jax.lax.stop_gradient(f.features_fn(content)[f.content_layer])
        total, parts = synthesis.perceptual_loss(
            f.features_fn, self.stylize(params, content), target, f.grams,
            content_layer=f.content_layer, weights=f.weights)
        return total, parts, variables

    def eval_batches(self, split, *, global_batch_size, process_index, process_count):
        """The first `config.style.eval_examples` (rounded up to whole batches)."""
        batches = iter(super().eval_batches(split, global_batch_size=global_batch_size,
                                       process_index=process_index,
                                       process_count=process_count))
        for _ in range(int(np.ceil(self.config.style.eval_examples / global_batch_size))):
            batch = next(batches, None)
            if batch is None:
                return
            yield batch
