"""Weight masks: sparse training in the one trainer, and magnitude pruning.

A mask is a tree of booleans with the structure of the parameters (True: the
weight is kept). Saved as .npz, one array per parameter, keyed by its path
('hidden_0/kernel', 'head/bias'), so a mask file can be read, edited and
checked without JAX. Every parameter has an entry; the ones that are never
pruned (biases, norm scales) are all True.

The trainer uses a mask when `config.prune.mask` names a file:

  * at the start of a run (fresh init or `init_from`) the parameters are
    multiplied by it, and it is placed in the optimizer state (`MaskedState`),
    so it is sharded like the parameters (it has their logical axis names) and
    saved with every checkpoint: a resumed run stays masked even if the file
    has gone, and never reads it again;
  * `masked(tx)` zeroes the gradients of pruned weights before the optimizer
    and their updates after it. The first keeps momentum and adaptive
    statistics of pruned weights at zero and the gradient-clipping norm that of
    the sub-network; the second keeps any weight decay or trust-ratio term
    from moving a pruned weight off zero. Pruned weights are exactly zero for
    the whole run.

Pruning follows Frankle & Carbin 2019 ("The Lottery Ticket Hypothesis"):
only the kernels of dense and convolutional layers are pruned (not biases or
normalisation parameters); each round removes `rate` of the weights that
remain, by smallest magnitude of the trained weights, in each layer
separately ('layer', their LeNet and Conv-2/4/6) or pooled over all layers
('global', their VGG-19 and ResNet-18, Sec. 4); and the output layer is
pruned at half the rate of the rest (their Figure 2 table: LeNet "fc 20%",
with connections to the outputs pruned at half that rate; the authors' code,
google-research/lottery-ticket-hypothesis mnist_fc/constants.py, has
PRUNE_PERCENTS = {'layer0': .2, 'layer1': .2, 'layer2': .1}).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vision_jax.config import ConfigError
from vision_jax import flops

# The classifier layer of every model family is named 'head' (see
# vision_jax/models/); its kernel is pruned at `output_rate`.
OUTPUT_LAYER = "head"
SCOPES = ("layer", "global")


# ---------------------------------------------------------------------------
# Paths and files.

def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_name(path: tuple) -> str:
    """'hidden_0/kernel' for the path of a leaf in a parameter tree."""
    return "/".join(_key_name(k) for k in path)


def flatten(tree: Any) -> dict[str, Any]:
    """{path name: leaf} of a parameter (or mask) tree, in tree order."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {path_name(p): leaf for p, leaf in leaves}


def unflatten(like: Any, flat: Mapping[str, Any]) -> Any:
    """The tree of `like`'s structure whose leaves are `flat[path name]`."""
    return jax.tree_util.tree_map_with_path(lambda p, _: flat[path_name(p)], like)


def is_prunable(name: str, leaf: Any) -> bool:
    """Kernels of dense and convolutional layers; not biases, scales or embeddings."""
    return name.rsplit("/", 1)[-1] == "kernel" and len(np.shape(leaf)) >= 2


def is_output(name: str) -> bool:
    return name.split("/", 1)[0] == OUTPUT_LAYER


def full_mask(params: Any) -> Any:
    """A mask that keeps every weight (numpy booleans shaped like `params`)."""
    return jax.tree.map(lambda p: np.ones(np.shape(p), bool), params)


def save_mask(path: str, mask: Any) -> None:
    """Writes `mask` as .npz keyed by parameter path; atomically (a killed
    writer leaves no half-written mask behind)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.npz"
    np.savez(tmp, **{k: np.asarray(v, bool) for k, v in flatten(mask).items()})
    os.replace(tmp, path)


def load_mask(path: str, abstract_params: Any) -> Any:
    """Reads a mask file and checks it against the model's parameters.

    `abstract_params` is a tree of arrays or `jax.ShapeDtypeStruct`s. Returns
    numpy booleans shaped like it; raises ConfigError naming what does not
    match (missing or unexpected parameters, wrong shapes) otherwise.
    """
    where = f"config.prune.mask={path!r}"
    if not os.path.isfile(path):
        raise ConfigError(f"{where} does not exist")
    try:
        with np.load(path) as f:
            stored = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{where} is not a readable .npz mask: {e}") from None
    expected = {k: tuple(np.shape(v)) for k, v in flatten(abstract_params).items()}
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    wrong = sorted(f"{k}: mask {stored[k].shape}, parameter {expected[k]}"
                   for k in set(expected) & set(stored) if stored[k].shape != expected[k])
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"no entry for parameters {missing}")
        if unexpected:
            problems.append(f"entries for parameters the model does not have {unexpected}")
        if wrong:
            problems.append(f"wrong shapes ({'; '.join(wrong)})")
        raise ConfigError(f"{where} does not match the model: {', '.join(problems)}. "
                          f"The model's parameters are {sorted(expected)}")
    for k, v in stored.items():
        if v.dtype != bool and not np.isin(v, (0, 1)).all():
            raise ConfigError(f"{where}: entry {k!r} holds values other than 0/1 (dtype {v.dtype})")
    return unflatten(abstract_params, {k: v.astype(bool) for k, v in stored.items()})


# ---------------------------------------------------------------------------
# Sparse training: the optimizer wrapper and the sparsity the summary reports.

class MaskedState(NamedTuple):
    mask: Any   # booleans shaped (and sharded) like the parameters
    inner: Any  # the wrapped optimizer's state


def _where(mask: Any, tree: Any) -> Any:
    return jax.tree.map(lambda m, x: jnp.where(m, x, jnp.zeros_like(x)), mask, tree)


def masked(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """`inner` restricted to the weights a mask keeps (see the module docstring).

    `init` starts from a mask that keeps everything; the trainer puts the real
    one in place. Under `jax.eval_shape` of the boxed init, the mask inherits
    the parameters' logical axis names and so their sharding.
    """

    def init(params):
        return MaskedState(jax.tree.map(lambda p: jnp.ones(p.shape, bool), params),
                           inner.init(params))

    def update(updates, state, params=None):
        updates, inner_state = inner.update(_where(state.mask, updates), state.inner, params)
        return _where(state.mask, updates), MaskedState(state.mask, inner_state)

    return optax.GradientTransformation(init, update)


def apply(params: Any, mask: Any) -> Any:
    """Pruned weights set to exactly zero (jittable)."""
    return _where(mask, params)


def sparsity(params: Any) -> jax.Array:
    """Fraction of the prunable weights (kernels) that are exactly zero (jittable)."""
    kernels = [p for name, p in flatten(params).items() if is_prunable(name, p)]
    if not kernels:
        return jnp.zeros((), jnp.float32)
    zeros = sum(jnp.sum(p == 0, dtype=jnp.float32) for p in kernels)
    return zeros / flops.count_params(kernels)


def mask_density(mask: Any) -> dict[str, float]:
    """{'all': fraction of prunable weights kept, <kernel path>: its fraction kept}."""
    kernels = {k: np.asarray(m) for k, m in flatten(mask).items() if is_prunable(k, m)}
    total = flops.count_params(list(kernels.values()))
    out = {"all": sum(int(m.sum()) for m in kernels.values()) / max(total, 1)}
    out.update({k: float(m.mean()) for k, m in kernels.items()})
    return out


# ---------------------------------------------------------------------------
# Pruning.

def _check_rate(option: str, rate: float) -> None:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"pruning {option}={rate!r} must be in [0, 1): the fraction of the "
                         "remaining weights removed per round")


def magnitude_prune(params: Any, mask: Any, *, rate: float, output_rate: float | None = None,
                    scope: str = "layer") -> Any:
    """The next round's mask: `rate` of the weights `mask` keeps, smallest |w| first.

    `params` are the trained weights (arrays or numpy), `mask` the current
    mask. With scope='layer' each kernel loses round(rate * kept) weights;
    with 'global' the kernels other than the output layer's are ranked
    together. The output layer's kernel always loses `output_rate` of its
    weights on its own (default rate / 2, Frankle & Carbin 2019). Ties in
    magnitude go to the weight that comes first in row-major order, so the
    count removed is exact and the result deterministic.
    """
    output_rate = rate / 2 if output_rate is None else output_rate
    _check_rate("rate", rate)
    _check_rate("output_rate", output_rate)
    if scope not in SCOPES:
        raise ValueError(f"pruning scope={scope!r} is not valid; choose one of {list(SCOPES)}")
    weights = {k: np.asarray(v) for k, v in flatten(params).items()}
    new = {k: np.array(v, bool) for k, v in flatten(mask).items()}
    kernels = [k for k in weights if is_prunable(k, weights[k])]
    groups = [([k], output_rate if is_output(k) else rate) for k in kernels]
    if scope == "global":
        hidden = [k for k in kernels if not is_output(k)]
        groups = [(hidden, rate)] + [([k], output_rate) for k in kernels if is_output(k)]
    for names, group_rate in groups:
        if not names:
            continue
        alive = [np.flatnonzero(new[k].ravel()) for k in names]
        scores = np.concatenate([np.abs(weights[k].ravel()[a]) for k, a in zip(names, alive)])
        owner = np.concatenate([np.full(len(a), i) for i, a in enumerate(alive)])
        position = np.concatenate(alive)
        remove = np.argsort(scores, kind="stable")[:int(round(group_rate * scores.size))]
        for i, k in enumerate(names):
            flat = new[k].reshape(-1)
            flat[position[remove[owner[remove] == i]]] = False
    return unflatten(mask, new)


def random_mask(mask: Any, seed: int) -> Any:
    """A mask with the same number of kept weights in every kernel as `mask`,
    at random positions: the random-pruning control at the same layer-wise
    sparsity (Frankle & Carbin 2019 compare with "randomly sampled sparse
    networks", Figure 1; keeping each layer's count is the layer-wise shuffle
    of Frankle et al. 2021, "Pruning Neural Networks at Initialization: Why
    are We Missing the Mark?")."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, m in flatten(mask).items():
        m = np.asarray(m, bool)
        if not is_prunable(k, m):
            out[k] = m.copy()
            continue
        keep = np.zeros(m.size, bool)
        keep[rng.choice(m.size, int(m.sum()), replace=False)] = True
        out[k] = keep.reshape(m.shape)
    return unflatten(mask, out)


# ---------------------------------------------------------------------------
# Supermasks: masks learned on a frozen, untrained network.
#
# Zhou et al. 2019 ("Deconstructing Lottery Tickets: Zeros, Signs, and the
# Supermask") found masks that, applied to a network's random initial weights
# without any training of the weights, classify far above chance; Ramanujan et
# al. 2020 ("What's Hidden in a Randomly Weighted Neural Network?") learn them
# with edge-popup: every weight w gets a score s, the forward pass uses
# w * [|s| among the top `density` of its layer], and the gradient reaches s
# straight through the step (d loss / d s = d loss / d mask). The weights never
# change; only the scores train. models/supermask.py wraps any model this way.

SUPERMASK_WEIGHTS = ("signed_constant", "init")


def signed_constant(params: Any) -> Any:
    """Every prunable kernel replaced by sign(w) * its RMS (the rest as it is).

    The "signed constant" of Zhou et al. 2019 and Ramanujan et al. 2020 (their
    signed Kaiming constant, sigma = sqrt(2 / fan_in)): one magnitude per layer,
    here the initialiser's own scale measured on the drawn kernel, so the
    layer keeps the variance its init gave it. Both papers find it the best
    frozen weights for a supermask."""
    def one(path, w):
        if not is_prunable(path_name(path), w):
            return w
        return jnp.sign(w) * jnp.sqrt(jnp.mean(jnp.square(w)))
    return jax.tree_util.tree_map_with_path(one, params)


def top_k_mask(scores: jax.Array, density: float) -> jax.Array:
    """Edge-popup's mask of one layer: 1 where |score| is among the round(density * n)
    largest of the layer, else 0 (a float array shaped like `scores`); its
    gradient passes straight through the step to |score| (Ramanujan et al.
    2020, Alg. 1)."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"supermask density={density!r} must be in (0, 1]")
    magnitude = jnp.abs(scores).ravel()
    keep = max(1, int(round(density * magnitude.size)))
    threshold = jnp.sort(magnitude)[magnitude.size - keep]
    # Ranked by |score|, and differentiated through it (Ramanujan et al.'s code
    # takes scores.abs() before the step): a large score of either sign keeps its weight.
    return _straight_through(jnp.abs(scores), (jnp.abs(scores) >= threshold).astype(scores.dtype))


@jax.custom_vjp
def _straight_through(scores: jax.Array, hard: jax.Array) -> jax.Array:
    """`hard` exactly (0 and 1, not hard + s - s, which rounds), with the gradient
    of the identity with respect to `scores`."""
    del scores
    return hard


def _straight_through_fwd(scores, hard):
    return hard, None


def _straight_through_bwd(_, g):
    return g, jnp.zeros_like(g)


_straight_through.defvjp(_straight_through_fwd, _straight_through_bwd)


def supermask_apply(weights: Any, scores: Any, *, density: float,
                    output_density: float | None = None) -> Any:
    """`weights` with every prunable kernel multiplied by the top-k mask of its
    score (`scores`: a tree of the kernels' paths, as `supermask_scores` makes
    it); the output layer's kernel keeps `output_density` of its weights
    (default `density`)."""
    output_density = density if output_density is None else output_density
    scores = flatten(scores)

    def one(path, w):
        name = path_name(path)
        if name not in scores:
            return w
        return w * top_k_mask(scores[name], output_density if is_output(name) else density)
    return jax.tree_util.tree_map_with_path(one, weights)


def supermask_scores(weights: Any, rng: jax.Array) -> dict:
    """Initial scores: a nested dict with the paths of `weights`' prunable kernels,
    each drawn from N(0, 1) times its kernel's RMS (Ramanujan et al. 2020 draw
    them like a Kaiming init)."""
    out: dict = {}
    kernels = [(k, w) for k, w in flatten(weights).items() if is_prunable(k, w)]
    for i, (name, w) in enumerate(kernels):
        *parents, leaf = name.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        scale = jnp.sqrt(jnp.mean(jnp.square(w))) + 1e-12
        node[leaf] = scale * jax.random.normal(jax.random.fold_in(rng, i), jnp.shape(w),
                                               jnp.asarray(w).dtype)
    return out


def supermask_of(weights: Any, scores: Any, *, density: float,
                 output_density: float | None = None) -> Any:
    """The binary mask (numpy booleans shaped like `weights`) that a trained
    supermask's scores select: a mask file the trainer can read, whose
    `mask_density` is the supermask's."""
    masked_ones = supermask_apply(jax.tree.map(jnp.ones_like, weights), scores,
                                  density=density, output_density=output_density)
    return jax.tree.map(lambda m: np.asarray(m) > 0.5, masked_ones)
