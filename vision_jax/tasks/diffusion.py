"""Denoising diffusion (DDPM, Ho et al. 2020, arXiv:2006.11239) as a task.

Forward process over T steps (`config.diffusion.timesteps`, t = 0 .. T-1) with
noise levels beta_t and alpha_bar_t = prod_{s<=t} (1 - beta_s); its marginal
is closed-form (Ho et al. eq. 4):

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)

Schedules (`schedule`):
  linear  beta from 1e-4 to 0.02 over T = 1000 (Ho et al.), both ends scaled
          by 1000 / T for other T (Nichol & Dhariwal 2021's rule)
  cosine  alpha_bar_t = f(t + 1) / f(0), f(t) = cos((t / T + s) / (1 + s) pi / 2)^2,
          s = 0.008, betas clipped at 0.999 (Nichol & Dhariwal 2021,
          arXiv:2102.09672, eq. 17; index shifted by one because t counts from 0)

The network sees x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps and
the step t, and is trained by mean squared error ("L_simple") on
(`prediction`):
  eps  the noise (Ho et al.)
  v    v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0
       (Salimans & Ho 2022, arXiv:2202.00512, Sec. 4 and App. D)
With `conditional`, labels are dropped to the null class with probability
`p_uncond` for classifier-free guidance (see tasks/denoising.py).

Sampling (`sample(..., steps, guidance, sampler, eta, clip, noise)`), from
x ~ N(0, I) at t = T-1 down to x_0 over a subsequence of `steps` timesteps
tau_i = round(i T / steps) - 1, i = 1 .. steps (all T when steps = T), always
including T-1; every step predicts x_0 (clipped to [-1, 1] with `clip`, and eps
recomputed from it) and then moves to the previous timestep of the sequence:
  ddpm  ancestral: a draw from the posterior q(x_prev | x_t, x_0) with
        variance beta~ = (1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev)
        (Ho et al. eq. 6-7; on a subsequence the betas are the respaced
        1 - abar_t / abar_prev of Nichol & Dhariwal Sec. 4). Default steps:
        all T on an accelerator, capped at 250 on a CPU
        (`sample.cpu_max_steps`), where Nichol & Dhariwal find a respaced
        250-step sampler close to the full one.
  ddim  x_prev = sqrt(abar_prev) x_0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
        sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)
        (Song et al. 2021, arXiv:2010.02502, eq. 12 and 16): deterministic
        at eta = 0, the ddpm sampler at eta = 1. Any number of steps.
The whole chain is one `lax.scan`, so sampling is one jitted program.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.models.layers import check_choice
from vision_jax.tasks.denoising import DenoisingTask, expand

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("eps", "v")
SAMPLERS = ("ddpm", "ddim")
DDIM_DEFAULT_STEPS = 50


# ---------------------------------------------------------------------------
# Schedules and the forward process (numpy float64 tables, pure jnp maths)
# ---------------------------------------------------------------------------

def betas(schedule: str, timesteps: int) -> np.ndarray:
    """beta_t, t = 0 .. T-1, float64."""
    check_choice("diffusion", "schedule", schedule, SCHEDULES)
    if schedule == "linear":
        scale = 1000.0 / timesteps
        return np.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=np.float64)
    s = 0.008
    t = np.arange(timesteps + 1, dtype=np.float64)
    f = np.cos((t / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    return np.minimum(1.0 - f[1:] / f[:-1], 0.999)


def alpha_bars(schedule: str, timesteps: int) -> np.ndarray:
    """alpha_bar_t = prod_{s <= t} (1 - beta_s), t = 0 .. T-1, float64."""
    return np.cumprod(1.0 - betas(schedule, timesteps))


def q_sample(alpha_bar_t, x0, eps):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, a draw from q(x_t | x_0)."""
    a = expand(alpha_bar_t, x0)
    return jnp.sqrt(a) * x0 + jnp.sqrt(1.0 - a) * eps


def v_from_eps(alpha_bar_t, x0, eps):
    """The v target: sqrt(abar) eps - sqrt(1 - abar) x_0."""
    a = expand(alpha_bar_t, x0)
    return jnp.sqrt(a) * eps - jnp.sqrt(1.0 - a) * x0


def eps_x0_from_v(alpha_bar_t, x_t, v):
    """(eps, x_0) from x_t and v:
    eps = sqrt(1 - abar) x_t + sqrt(abar) v,  x_0 = sqrt(abar) x_t - sqrt(1 - abar) v."""
    a = expand(alpha_bar_t, x_t)
    return jnp.sqrt(1.0 - a) * x_t + jnp.sqrt(a) * v, jnp.sqrt(a) * x_t - jnp.sqrt(1.0 - a) * v


def x0_from_eps(alpha_bar_t, x_t, eps):
    a = expand(alpha_bar_t, x_t)
    return (x_t - jnp.sqrt(1.0 - a) * eps) / jnp.sqrt(a)


def eps_from_x0(alpha_bar_t, x_t, x0):
    a = expand(alpha_bar_t, x_t)
    return (x_t - jnp.sqrt(a) * x0) / jnp.sqrt(1.0 - a)


def to_eps_x0(prediction: str, alpha_bar_t, x_t, out):
    """The network's output, in either parametrisation, as (eps, x_0)."""
    if prediction == "v":
        return eps_x0_from_v(alpha_bar_t, x_t, out)
    return out, x0_from_eps(alpha_bar_t, x_t, out)


def sampling_timesteps(timesteps: int, steps: int) -> np.ndarray:
    """Ascending tau_i = round(i T / steps) - 1, i = 1 .. steps: evenly spaced, ends at T-1."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"diffusion: steps={steps} must be in [1, {timesteps}] (the timesteps)")
    return np.round(np.arange(1, steps + 1) * timesteps / steps).astype(np.int64) - 1


# ---------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------

class Diffusion(DenoisingTask):
    section = "diffusion"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        d = self.opts
        check_choice("diffusion", "prediction", d.prediction, PREDICTIONS)
        check_choice("diffusion", "sample.sampler", d.sample.sampler, SAMPLERS)
        self.timesteps = int(d.timesteps)
        self.alpha_bar = alpha_bars(d.schedule, self.timesteps)  # float64 numpy
        self.prediction = d.prediction

    def per_example_loss(self, params, variables, batch, rng, *, train):
        x0 = batch["image"].astype(jnp.float32)
        n = x0.shape[0]
        t_rng, n_rng, l_rng, d_rng = jax.random.split(rng, 4)
        t = jax.random.randint(t_rng, (n,), 0, self.timesteps)
        eps = jax.random.normal(n_rng, x0.shape, jnp.float32)
        a = jnp.asarray(self.alpha_bar, jnp.float32)[t]
        x_t = q_sample(a, x0, eps)
        labels, dropped = (self.train_labels(batch[self.condition_key], l_rng) if train
                           else (batch[self.condition_key], None))
        out = self.apply(params, variables, x_t, t.astype(jnp.float32), labels, train=train,
                         rng=d_rng)
        target = eps if self.prediction == "eps" else v_from_eps(a, x0, eps)
        per = jnp.mean(jnp.square(out - target), axis=(1, 2, 3))
        metrics = {} if dropped is None else {"uncond_fraction": dropped.mean()}
        return per, metrics

    def default_steps(self, sampler: str) -> int:
        steps = int(self.opts.sample.steps)
        if steps:
            return steps
        if sampler == "ddim":
            return min(DDIM_DEFAULT_STEPS, self.timesteps)
        cap = int(self.opts.sample.cpu_max_steps)
        return min(self.timesteps, cap) if jax.default_backend() == "cpu" else self.timesteps

    def sample(self, params, variables, rng, *, num, labels=None, steps=None, guidance=None,
               sampler=None, eta=None, clip=None, noise=None):
        """Images in [-1, 1] (with `clip`), [num, H, W, C]. `noise` is the initial x_{T-1}
        (default: drawn from `rng`); options left None take config.diffusion.sample's."""
        s = self.opts.sample
        sampler = s.sampler if sampler is None else sampler
        check_choice("diffusion", "sampler", sampler, SAMPLERS)
        steps = self.default_steps(sampler) if steps is None else int(steps)
        guidance = float(s.guidance) if guidance is None else guidance
        eta = float(s.eta) if eta is None else eta
        clip = bool(self.opts.clip_denoised) if clip is None else clip
        n_rng, l_rng, loop_rng = jax.random.split(rng, 3)
        labels = self.sample_labels(l_rng, num, labels)
        if noise is None:
            noise = jax.random.normal(n_rng, (num, *self.info.image_shape), jnp.float32)
        return self.denoise(params, variables, noise, labels, loop_rng, steps=steps,
                            guidance=guidance, sampler=sampler, eta=eta, clip=clip)

    def denoise(self, params, variables, x, labels, rng, *, steps, guidance, sampler, eta=0.0,
                clip=True):
        """Runs the reverse chain from x (at t = T-1) to x_0 in one lax.scan."""
        taus = sampling_timesteps(self.timesteps, steps)
        a_t = self.alpha_bar[taus]
        a_prev = np.concatenate([[1.0], self.alpha_bar[taus[:-1]]])
        rev = lambda v: jnp.asarray(v[::-1], jnp.float32)
        xs = (rev(taus), rev(a_t), rev(a_prev), jax.random.split(rng, steps))
        n = x.shape[0]
        stochastic = sampler == "ddpm" or not (isinstance(eta, (int, float)) and eta == 0)

        def step(x, xs):
            t, at, ap, key = xs
            out = self.guided(params, variables, x, jnp.full((n,), t, jnp.float32), labels,
                              guidance)
            eps, x0 = to_eps_x0(self.prediction, at, x, out)
            if clip:
                x0 = jnp.clip(x0, -1.0, 1.0)
                eps = eps_from_x0(at, x, x0)
            if sampler == "ddpm":
                beta = 1.0 - at / ap
                mean = (jnp.sqrt(ap) * beta / (1.0 - at)) * x0 + (
                    jnp.sqrt(at / ap) * (1.0 - ap) / (1.0 - at)) * x
                std = jnp.sqrt(beta * (1.0 - ap) / (1.0 - at))
            else:
                std = eta * jnp.sqrt((1.0 - ap) / (1.0 - at) * (1.0 - at / ap))
                mean = jnp.sqrt(ap) * x0 + jnp.sqrt(jnp.maximum(1.0 - ap - std**2, 0.0)) * eps
            if stochastic:
                mean = mean + std * jax.random.normal(key, x.shape, x.dtype)
            return mean, None

        x, _ = jax.lax.scan(step, x.astype(jnp.float32), xs)
        return x
