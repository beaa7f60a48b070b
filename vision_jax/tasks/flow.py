"""Flow matching / rectified flow (Liu et al. 2022, arXiv:2209.03003; Lipman et al.
2023, arXiv:2210.02747) as a task.

Noise x_0 ~ N(0, I) and data x_1 are joined by straight lines,

    x_t = (1 - t) x_0 + t x_1,   t ~ U[0, 1],

and the U-Net v(x_t, t) (the same network as diffusion's, fed 1000 t) regresses
the velocity of the line, x_1 - x_0, by mean squared error. Sampling
integrates dx/dt = v(x, t) from noise at t = 0 to t = 1 with a fixed step
1 / steps (`sample(..., steps, guidance, sampler, noise)`):
  euler  x <- x + dt v(x, t)                                   (1 evaluation / step)
  heun   x' = x + dt v(x, t);  x <- x + dt/2 (v(x, t) + v(x', t + dt))   (2 / step)
in one `lax.fori_loop`. Classifier-free guidance as in tasks/denoising.py.

Reflow (Liu et al. Sec. 2.3): with `config.flow.reflow.teacher` set to a
trained flow run's workdir, the run first draws `num_pairs` pairs (z, X) from
the teacher, X being the teacher's ODE solution from z (`reflow.sampler`,
`reflow.steps`, `reflow.guidance`, classes in turn, the teacher's EMA
weights when it keeps them), caches them under
`<teacher>/reflow/pairs_<...>.npz`, and trains on those couplings instead of
independent (noise, data) pairs: the lines the student learns no longer
cross, so its flow is straighter and few-step (even one-step) sampling
improves. Eval still measures the independent-coupling loss on the held-out
data.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.models.layers import check_choice
from vision_jax.tasks.denoising import DenoisingTask, expand

SAMPLERS = ("euler", "heun")
TIME_SCALE = 1000.0  # t in [0, 1] enters the U-Net's sinusoids as 1000 t, like a diffusion step


def interpolate(x0, x1, t):
    """x_t = (1 - t) x_0 + t x_1 for t [B]."""
    t = expand(t, x0)
    return (1.0 - t) * x0 + t * x1


def integrate(velocity, x, steps: int, sampler: str = "euler"):
    """Integrates dx/dt = velocity(x, t) (t a scalar) from t = 0 to 1 in `steps` fixed steps."""
    check_choice("flow", "sampler", sampler, SAMPLERS)
    if steps < 1:
        raise ValueError(f"flow: steps={steps} must be >= 1")
    dt = 1.0 / steps

    def body(i, x):
        t = i.astype(jnp.float32) * dt
        v = velocity(x, t)
        if sampler == "euler":
            return x + dt * v
        v_next = velocity(x + dt * v, t + dt)
        return x + (0.5 * dt) * (v + v_next)

    return jax.lax.fori_loop(0, steps, body, x)


class Flow(DenoisingTask):
    section = "flow"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        check_choice("flow", "sample.sampler", self.opts.sample.sampler, SAMPLERS)
        check_choice("flow", "reflow.sampler", self.opts.reflow.sampler, SAMPLERS)
        if self.captioned and self.opts.reflow.teacher:
            raise ValueError("flow.reflow: reflow pairs are drawn per class; a text-to-image "
                             "(condition='caption') run cannot use them yet")

    def per_example_loss(self, params, variables, batch, rng, *, train):
        x1 = batch["image"].astype(jnp.float32)
        n = x1.shape[0]
        t_rng, n_rng, l_rng, d_rng = jax.random.split(rng, 4)
        t = jax.random.uniform(t_rng, (n,), jnp.float32)
        # A reflow batch brings its coupling: the noise the teacher mapped to x1.
        x0 = (batch["noise"].astype(jnp.float32) if "noise" in batch
              else jax.random.normal(n_rng, x1.shape, jnp.float32))
        labels, dropped = (self.train_labels(batch[self.condition_key], l_rng) if train
                           else (batch[self.condition_key], None))
        out = self.apply(params, variables, interpolate(x0, x1, t), TIME_SCALE * t, labels,
                         train=train, rng=d_rng)
        per = jnp.mean(jnp.square(out - (x1 - x0)), axis=(1, 2, 3))
        metrics = {} if dropped is None else {"uncond_fraction": dropped.mean()}
        return per, metrics

    def sample(self, params, variables, rng, *, num, labels=None, steps=None, guidance=None,
               sampler=None, noise=None):
        """Images [num, H, W, C] (not clipped: the ODE's end points), from `noise` at t = 0
        (default: drawn from `rng`); options left None take config.flow.sample's."""
        s = self.opts.sample
        sampler = s.sampler if sampler is None else sampler
        steps = int(s.steps) if steps is None else int(steps)
        guidance = float(s.guidance) if guidance is None else guidance
        n_rng, l_rng = jax.random.split(rng)
        labels = self.sample_labels(l_rng, num, labels)
        if noise is None:
            noise = jax.random.normal(n_rng, (num, *self.info.image_shape), jnp.float32)

        def velocity(x, t):
            return self.guided(params, variables, x, jnp.full((x.shape[0],), TIME_SCALE * t),
                               labels, guidance)

        return integrate(velocity, noise.astype(jnp.float32), steps, sampler)

    # -- reflow: the teacher's couplings as the training data ---------------
    @classmethod
    def prepare_data(cls, config):
        super().prepare_data(config)
        if config.flow.reflow.teacher:
            make_reflow_pairs(config)

    def train_iterator(self, *, global_batch_size, seed, process_index, process_count):
        if not self.config.flow.reflow.teacher:
            return super().train_iterator(global_batch_size=global_batch_size, seed=seed,
                                          process_index=process_index,
                                          process_count=process_count)
        import grain

        if global_batch_size % process_count:
            raise ValueError(f"global_batch_size={global_batch_size} must be a multiple of "
                             f"process_count={process_count}")
        path = reflow_pairs_path(self.config)
        if not os.path.isfile(path):  # made by prepare_data on process 0
            raise FileNotFoundError(f"reflow pairs {path} are missing")
        ds = grain.MapDataset.source(_Pairs(path)).shuffle(seed=seed).repeat()
        ds = ds.batch(global_batch_size // process_count,
                      drop_remainder=True)[process_index::process_count]
        return iter(ds.to_iter_dataset())


class _Pairs:
    """Random access to the cached (noise, image, label) triples of a reflow run."""

    def __init__(self, path: str):
        with np.load(path) as f:
            self.noise, self.image, self.label = f["noise"], f["image"], f["label"]

    def __len__(self):
        return len(self.label)

    def __getitem__(self, i):
        return {"image": self.image[i], "noise": self.noise[i], "label": self.label[i]}


def reflow_pairs_path(config) -> str:
    r = config.flow.reflow
    name = (f"pairs_{r.sampler}{r.steps}_w{float(r.guidance):g}_n{r.num_pairs}_"
            f"seed{r.seed}.npz")
    return os.path.join(os.path.abspath(r.teacher), "reflow", name)


def make_reflow_pairs(config, chunk: int = 256) -> str:
    """Draws (and caches) the teacher's (noise, sample) pairs; returns the file's path."""
    from vision_jax import checkpoint as ckpt_lib
    from vision_jax import config as config_lib

    path = reflow_pairs_path(config)
    if os.path.isfile(path):
        return path
    r = config.flow.reflow
    teacher_cfg_path = os.path.join(r.teacher, "config.json")
    if not os.path.isfile(teacher_cfg_path):
        raise config_lib.ConfigError(f"config.flow.reflow.teacher={r.teacher!r}: "
                                     f"{teacher_cfg_path} does not exist (not a run directory)")
    tc = config_lib.from_json(teacher_cfg_path)
    if tc.task != "flow":
        raise config_lib.ConfigError(f"config.flow.reflow.teacher={r.teacher!r} is a "
                                     f"{tc.task!r} run; reflow needs a flow teacher")
    info = Flow.dataset_info(config)
    teacher = Flow(tc, info)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.eval_shape(lambda k: teacher.init(k, teacher.example_batch()),
                              jax.random.key(0))
    abstract_params = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device),
        nn.unbox(abstract[0]))
    variables = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), nn.unbox(abstract[1]))
    item = "ema" if tc.ema.decay and tc.ema.evaluate else "params"
    params = ckpt_lib.restore_params(os.path.join(r.teacher, "checkpoints"), abstract_params,
                                     item=item)

    @jax.jit
    def draw(params, key, labels):
        z = jax.random.normal(key, (labels.shape[0], *info.image_shape), jnp.float32)
        x = teacher.sample(params, variables, key, num=labels.shape[0], labels=labels,
                           steps=int(r.steps), guidance=float(r.guidance), sampler=r.sampler,
                           noise=z)
        return z, x

    n = int(r.num_pairs)
    classes = teacher.num_classes
    labels = (np.arange(n) % classes if classes else np.zeros(n)).astype(np.int32)
    noise, images = [], []
    for i, start in enumerate(range(0, n, chunk)):
        part = labels[start:start + chunk]
        padded = np.pad(part, (0, chunk - len(part)))  # one compiled shape
        z, x = jax.device_get(draw(params, jax.random.fold_in(jax.random.key(r.seed), i),
                                   padded))
        noise.append(z[:len(part)])
        images.append(x[:len(part)])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, noise=np.concatenate(noise), image=np.concatenate(images), label=labels)
    os.replace(tmp, path)
    print(f"[vision_jax] reflow: {n} pairs from {r.teacher} ({item}, {r.sampler} "
          f"{r.steps} steps, guidance {r.guidance}) -> {path}", flush=True)
    return path
