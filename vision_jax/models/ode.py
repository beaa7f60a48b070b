"""Neural ODEs: adaptive diffrax solves of Flax vector fields, and the ODE-Net classifier.

Chen et al. 2018, "Neural Ordinary Differential Equations" (arXiv:1806.07366):
a residual stack h <- h + f(h) becomes the flow dh/dt = f(t, h) from t = 0 to
t = 1, solved by an adaptive Runge-Kutta method (diffrax, Kidger 2021). Depth
is then the number of function evaluations (NFE) the solver spends, set by its
tolerance rather than by the architecture.

`solve` is the one diffrax call of the code base (ODE-Net here, FFJORD in
vision_jax/tasks/ffjord.py):
  solver   'tsit5' (Tsitouras 2011) or 'dopri5' (Dormand-Prince 1980): both
           5(4) explicit Runge-Kutta pairs with 7 stages and first-same-as-last,
           so 6 new evaluations per step; counted under jit,
           NFE = 6 x num_steps + 1 (tests/test_ode.py checks it)
  rtol, atol  the PID step-size controller's tolerances
  adjoint  'checkpoint': backpropagate through the solver's own operations
           (diffrax.RecursiveCheckpointAdjoint: exact gradients of the discrete
           solve, memory O(log steps) by recursive checkpointing);
           'backsolve': the continuous adjoint of Chen et al. (solve the adjoint
           ODE backwards; memory O(1), gradients exact only as tolerances -> 0)

A Flax Linen module cannot be called inside diffrax's loops as a bound
submodule, so the vector field is a separate module whose parameters the
owner declares as one parameter (`field_params`) and passes to the solve as
diffrax's `args`: both adjoints then differentiate with respect to them.
"""

from __future__ import annotations

from typing import Any, Callable

import diffrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from vision_jax.models.layers import boxed, check_choice, check_positive, flatten_images

SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5}
ADJOINTS = {"checkpoint": diffrax.RecursiveCheckpointAdjoint, "backsolve": diffrax.BacksolveAdjoint}
EVALS_PER_STEP = 6  # both solvers: 7 stages, the last one reused as the next step's first


def nfe(num_steps):
    """Function evaluations of a Tsit5/Dopri5 solve that took `num_steps` steps
    (accepted and rejected): the initial evaluation plus 6 per step."""
    return EVALS_PER_STEP * num_steps + 1


def check_solver_options(owner: str, solver: str, adjoint: str, rtol: float, atol: float):
    check_choice(owner, "solver", solver, SOLVERS)
    check_choice(owner, "adjoint", adjoint, ADJOINTS)
    for key, value in (("rtol", rtol), ("atol", atol)):
        if not value > 0:
            raise ValueError(f"{owner}: {key}={value!r} must be positive")


def solve(field: Callable, y0, args, *, t0: float = 0.0, t1: float = 1.0,
          solver: str = "tsit5", rtol: float = 1e-3, atol: float = 1e-3,
          adjoint: str = "checkpoint", max_steps: int = 256):
    """(y(t1), num_steps) of dy/dt = field(t, y, args) from y(t0) = y0 (any pytree).

    The step size is adaptive (PID controller, first step chosen by the
    solver); `num_steps` counts accepted and rejected steps (an int32 scalar).
    A solve that needs more than `max_steps` steps raises at run time.
    """
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), SOLVERS[solver](), t0, t1, None, y0, args,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        adjoint=ADJOINTS[adjoint](), max_steps=max_steps,
        saveat=diffrax.SaveAt(t1=True))
    return jax.tree.map(lambda y: y[-1], sol.ys), sol.stats["num_steps"]


def field_params(owner: nn.Module, name: str, field: nn.Module, *example_args):
    """The parameters of the separate module `field`, declared as parameter `name` of
    `owner` (initialised by `field.init(rng, *example_args)`, logical names kept)."""
    return nn.meta.unbox(owner.param(name, lambda rng: field.init(rng, *example_args)["params"]))


def with_time(t, h):
    """h [..., C] with t appended as one more channel (Chen et al.'s concatenated time)."""
    return jnp.concatenate([h, jnp.broadcast_to(jnp.asarray(t, h.dtype), h.shape[:-1] + (1,))],
                           axis=-1)


class MLPField(nn.Module):
    """f(t, h) on vectors [B, D]: [concat t -> Dense(hidden) -> tanh] x (depth - 1)
    -> concat t -> Dense(D).

    Dense rather than convolutional on purpose: on XLA:CPU the gradient of a
    3x3 convolution inside a loop (diffrax's while loop, or a plain lax.scan)
    measured ~30x slower than outside one (240 ms against 8 ms per evaluation
    at batch 64, 8x8x32; docs/ODE.md), which put a conv-field ODE-Net at
    5 s per step, while this field's whole solve-and-backprop takes ~10 ms.
    """

    hidden: int
    depth: int = 2
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, t, h):
        x = h
        for i in range(self.depth):
            last = i == self.depth - 1
            # Alternating logical names (as models/mlp.py): no kernel names one axis twice.
            names = ("embed", "mlp") if i % 2 == 0 else ("mlp", "embed")
            x = nn.Dense(h.shape[-1] if last else self.hidden, dtype=self.dtype,
                         param_dtype=self.param_dtype,
                         kernel_init=boxed(nn.initializers.lecun_normal(), *names),
                         bias_init=boxed(nn.initializers.zeros, names[1]),
                         name=f"dense{i}")(with_time(t, x))
            x = x if last else jnp.tanh(x)
        return x.astype(h.dtype)


class ODENet(nn.Module):
    """3x3 conv stem -> flatten -> Dense(dim) -> ODE block dh/dt = MLPField(t, h),
    t in [0, 1] -> Dense(num_classes).

    The solve is batched: one adaptive step size for the whole batch (its error
    norm is taken over every example), as in Chen et al.'s implementation. The
    solver's step count goes to the 'diagnostics' collection as `ode_steps` and
    `nfe` (reported by the classification task when it asks for that collection).

    Attributes:
      width: channels of the conv stem.
      dim: size of the ODE state h.
      hidden: hidden width of the vector field.
      solver, rtol, atol, adjoint, max_steps: see `solve`.
    """

    num_classes: int
    width: int = 16
    dim: int = 64
    hidden: int = 64
    solver: str = "tsit5"
    rtol: float = 1e-3
    atol: float = 1e-3
    adjoint: str = "checkpoint"
    max_steps: int = 256
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        owner = type(self).__name__
        for key in ("num_classes", "width", "dim", "hidden", "max_steps"):
            check_positive(owner, key, getattr(self, key))
        check_solver_options(owner, self.solver, self.adjoint, self.rtol, self.atol)
        super().__post_init__()

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        del train  # no dropout or batch statistics
        x = nn.Conv(self.width, (3, 3), padding="SAME", dtype=self.dtype,
                    param_dtype=self.param_dtype,
                    kernel_init=boxed(nn.initializers.lecun_normal(), None, None,
                                      "conv_in", "conv_out"),
                    bias_init=boxed(nn.initializers.zeros, "conv_out"),
                    name="stem")(images.astype(self.dtype))
        x = nn.Dense(self.dim, dtype=self.dtype, param_dtype=self.param_dtype,
                     kernel_init=boxed(nn.initializers.lecun_normal(), "mlp", "embed"),
                     bias_init=boxed(nn.initializers.zeros, "embed"),
                     name="embed")(flatten_images(nn.relu(x)))
        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))  # no half-precision solve
        field = MLPField(self.hidden, dtype=self.dtype, param_dtype=self.param_dtype)
        params = field_params(self, "field", field, 0.0, x)
        x, steps = solve(lambda t, h, p: field.apply({"params": p}, t, h), x, params,
                         solver=self.solver, rtol=self.rtol, atol=self.atol,
                         adjoint=self.adjoint, max_steps=self.max_steps)
        if not self.is_initializing():  # a diagnostic, never part of the model's state
            self.sow("diagnostics", "ode_steps", steps.astype(jnp.float32))
            self.sow("diagnostics", "nfe", nfe(steps).astype(jnp.float32))
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                          kernel_init=boxed(nn.initializers.lecun_normal(), "embed", "classes"),
                          bias_init=boxed(nn.initializers.zeros, "classes"), name="head")(x)
        return logits.astype(x.dtype)  # float32, or float64 in a float64 model (tests)
