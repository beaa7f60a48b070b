"""GANs (Goodfellow et al. 2014): two models, two optimizers, one jitted step.

The discriminator D and the generator G play the minimax game
min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]. Each train step first updates D
on a real batch and a fresh fake batch, then G against the updated D; both
updates sit in the trainer's one pure step (optimizer groups
`discriminator`, `generator`, each with its own optax chain:
`config.optimizers.<group>`).

Losses (`config.gan.loss`), with l = D's logit:
  non_saturating  D: softplus(-l_real) + softplus(l_fake)   G: softplus(-l_fake)
                  (Goodfellow et al.'s -log D(G(z)) for G, which does not
                  vanish when D wins early)
  minimax         as above for D; G: -softplus(l_fake) = log(1 - D(G(z))),
                  the game's own value, kept to show why it saturates
  hinge           D: relu(1 - l_real) + relu(1 + l_fake)    G: -l_fake
                  (Lim & Ye 2017; Miyato et al. 2018)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vision_jax.models import dcgan
from vision_jax.models.layers import check_choice
from vision_jax.tasks.base import Task

LOSSES = ("non_saturating", "minimax", "hinge")


class GAN(Task):
    groups = ("discriminator", "generator")

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        g = config.gan
        check_choice("gan", "loss", g.loss, LOSSES)
        size, _, channels = info.image_shape
        classes = info.num_classes if g.conditional else 0
        self.latent_dim = int(g.latent_dim)
        self.num_classes = classes
        self.generator = dcgan.Generator(image_size=size, channels=channels, width=g.g_width,
                                         num_classes=classes, **dtypes)
        self.discriminator = dcgan.Discriminator(image_size=size, width=g.d_width,
                                                 num_classes=classes,
                                                 spectral_norm=g.spectral_norm, **dtypes)

    def _latents(self, rng, n):
        z_rng, y_rng = jax.random.split(rng)
        labels = (jax.random.randint(y_rng, (n,), 0, self.num_classes) if self.num_classes
                  else jnp.zeros((n,), jnp.int32))
        return jax.random.normal(z_rng, (n, self.latent_dim)), labels

    def init(self, rng, batch):
        g_rng, d_rng = jax.random.split(rng)
        z, labels = self._latents(rng, batch["image"].shape[0])
        g_vars = self.generator.init(g_rng, z, labels, train=False)
        d_vars = self.discriminator.init(d_rng, batch["image"], labels, train=False)
        split = lambda v: (v["params"], {k: x for k, x in v.items() if k != "params"})  # noqa
        (gp, gv), (dp, dv) = split(g_vars), split(d_vars)
        return {"generator": gp, "discriminator": dp}, {"generator": gv, "discriminator": dv}

    def _generate(self, params, variables, z, labels, train):
        if not train:
            return self.generator.apply({"params": params["generator"],
                                         **variables["generator"]}, z, labels, train=False), {}
        images, new = self.generator.apply({"params": params["generator"],
                                            **variables["generator"]}, z, labels, train=True,
                                           mutable=list(variables["generator"].keys()))
        return images, dict(new)

    def _discriminate(self, params, variables, images, labels, train):
        out, new = self.discriminator.apply(
            {"params": params["discriminator"], **variables["discriminator"]}, images, labels,
            train=train, mutable=list(variables["discriminator"].keys()))
        return out, dict(new)

    def loss(self, params, variables, batch, rng, group=None):
        kind = self.config.gan.loss
        real = batch["image"]
        labels = batch["label"] if self.num_classes else jnp.zeros(real.shape[:1], jnp.int32)
        z, _ = self._latents(rng, real.shape[0])
        fake, g_vars = self._generate(params, variables, z, labels, train=True)
        if group == "discriminator":
            fake = jax.lax.stop_gradient(fake)
            both, d_vars = self._discriminate(params, variables,
                                              jnp.concatenate([real, fake]),
                                              jnp.concatenate([labels, labels]), train=True)
            l_real, l_fake = jnp.split(both, 2)
            if kind == "hinge":
                loss = jax.nn.relu(1 - l_real).mean() + jax.nn.relu(1 + l_fake).mean()
            else:
                loss = jax.nn.softplus(-l_real).mean() + jax.nn.softplus(l_fake).mean()
            # D's step must not move G's batch statistics: only D's variables change.
            new = {**variables, "discriminator": d_vars}
            return loss, {"d_real": jax.nn.sigmoid(l_real).mean(),
                          "d_fake": jax.nn.sigmoid(l_fake).mean()}, new
        l_fake, _ = self._discriminate(params, variables, fake, labels, train=False)
        if kind == "hinge":
            loss = -l_fake.mean()
        elif kind == "minimax":
            loss = -jax.nn.softplus(l_fake).mean()
        else:
            loss = jax.nn.softplus(-l_fake).mean()
        return loss, {}, {**variables, "generator": g_vars}

    def sample(self, params, variables, rng, *, num: int, labels=None, **options):
        z, random_labels = self._latents(rng, num)
        labels = random_labels if labels is None else labels
        return self._generate(params, variables, z, labels, train=False)[0]
