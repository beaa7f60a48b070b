"""The model zoo: published parameter counts, behaviour, sharding metadata, FLOPs.

Big models are only ever traced (`jax.eval_shape`); forward passes use tiny
configurations at 32x32.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vision_jax import flops, sharding
from vision_jax.models import MODELS, build_model
from vision_jax.models import layers
from vision_jax.models import vit as vit_lib
from vision_jax.scaling import tables

NUM_CLASSES = 10
IMAGES = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)

# Tiny settings of every family. Forward passes run on the jitted apply; what
# costs time on CPU is initialisation (XLA compiles the random sampler once per
# parameter shape), so concrete variables are built once per config and shared.
TINY = {
    "linear": dict(name="linear"),
    "mlp": dict(name="mlp", hidden=(32, 16), activation="gelu", dropout=0.5),
    "resnet18": dict(name="resnet", depth=18, width=4, stem="cifar"),
    "resnet50": dict(name="resnet", depth=50, width=4, stem="imagenet"),
    "vit": dict(name="vit", variant="Ti/8", width=32, depth=2, mlp_dim=64, num_heads=2,
                dropout=0.5),
}
# The configs whose forward passes are run on numbers, not only traced.
CONCRETE = ("linear", "mlp", "resnet18", "vit")


def tiny(key, **changes):
    return build_model({**TINY[key], **changes}, num_classes=NUM_CLASSES)


def abstract_variables(model, shape=(1, 224, 224, 3)):
    return jax.eval_shape(functools.partial(model.init, train=False), jax.random.key(0),
                          jax.ShapeDtypeStruct(shape, jnp.float32))


_INITIALISED = {}


def init(model):
    """Concrete variables of `model` at IMAGES' shape, computed once per model."""
    if model not in _INITIALISED:  # jitted: one compilation instead of one per operation
        _INITIALISED[model] = jax.jit(functools.partial(model.init, train=False))(
            jax.random.key(0), images())
    return _INITIALISED[model]


def apply(model, variables, images, *, train, seed=None, mutable=False):
    """Jitted apply: one compilation instead of op-by-op dispatch."""
    rngs = {} if seed is None else {"dropout": jax.random.key(seed)}
    run = jax.jit(functools.partial(model.apply, train=train, mutable=mutable))
    return run(variables, images, rngs=rngs)


def images(seed=0, shape=IMAGES.shape):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def boxed_leaves(tree):
    return jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))


# --- Published parameter counts (224x224x3 inputs, 1000 classes) -------------

# torchvision.models resnet{18,34,50,101,152} IMAGENET1K_V1 weights, `num_params`
# metadata (BN scale and bias counted, running statistics not).
@pytest.mark.parametrize("depth,expected", [
    (18, 11_689_512), (34, 21_797_672), (50, 25_557_032),
    (101, 44_549_160), (152, 60_192_808)])
def test_resnet_param_count(depth, expected):
    # The CNN table's stored count while resnet.py is unchanged, traced otherwise.
    model = build_model({"name": "resnet", "depth": depth}, num_classes=1000)
    assert tables.cnn_counts(model, (224, 224, 3))["params"] == expected


# Class token + learned position embedding covering it, as in the original ViT.
#   B/16, L/16, H/14: torchvision vit_{b_16,l_16,h_14} weights, `num_params`
#   metadata (for H/14 the 224px IMAGENET1K_SWAG_LINEAR_V1 weights).
#   H/16: 632,199,400 = H/14's count + 1280*(3*16*16 - 3*14*14) for the larger
#   patch kernel - 1280*(257 - 197) for the fewer positions.
@pytest.mark.parametrize("variant,expected", [
    ("B/16", 86_567_656), ("L/16", 304_326_632), ("H/14", 632_045_800),
    ("H/16", 632_199_400)])
def test_vit_param_count(variant, expected):
    model = build_model({"name": "vit", "variant": variant, "scan": True}, num_classes=1000)
    assert flops.count_params(abstract_variables(model)["params"]) == expected


def test_vit_scan_and_loop_hold_the_same_parameters():
    counts = [flops.count_params(abstract_variables(build_model(
        {"name": "vit", "variant": "B/16", "scan": scan}, num_classes=1000))["params"])
        for scan in (False, True)]
    assert counts == [86_567_656] * 2


def test_vit_variant_table_matches_papers():
    # (width, depth, mlp_dim, heads). Ti/S: DeiT (Touvron et al. 2021) Table 1;
    # B/L/H: Dosovitskiy et al. 2021 Table 1; g/G: Zhai et al. 2022 Table 2;
    # M: big_vision's models/vit.py.
    published = {
        "Ti": (192, 12, 768, 3), "S": (384, 12, 1536, 6), "M": (512, 12, 2048, 8),
        "B": (768, 12, 3072, 12), "L": (1024, 24, 4096, 16), "H": (1280, 32, 5120, 16),
        "g": (1408, 40, 6144, 16), "G": (1664, 48, 8192, 16)}
    table = {k: (v.width, v.depth, v.mlp_dim, v.num_heads) for k, v in vit_lib.VARIANTS.items()}
    assert table == published


def test_patchify_and_unpatchify():
    x = jnp.arange(2 * 8 * 12 * 3, dtype=jnp.float32).reshape(2, 8, 12, 3)
    tokens = layers.patchify(x, 4)
    # The 4x4 patches, row-major, each flattened (row, column, channel).
    reference = x.reshape(2, 2, 4, 3, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 6, 48)
    np.testing.assert_array_equal(tokens, reference)
    np.testing.assert_array_equal(tokens[:, 1], x[:, :4, 4:8].reshape(2, -1))
    np.testing.assert_array_equal(layers.unpatchify(tokens, 8, 4), x)
    # p = 1: the positions of a feature map as tokens (the ViT's embedding), as a reshape.
    np.testing.assert_array_equal(layers.patchify(x), x.reshape(2, 96, 3))
    np.testing.assert_array_equal(layers.unpatchify(layers.patchify(x), 8), x)


# --- Forward passes ----------------------------------------------------------

@pytest.mark.parametrize("key", sorted(TINY))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_logits_are_float32_whatever_the_compute_dtype(key, dtype):
    model = build_model(TINY[key], num_classes=NUM_CLASSES, dtype=dtype)
    variables = abstract_variables(model, IMAGES.shape)
    assert {leaf.dtype for leaf in jax.tree.leaves(nn.unbox(variables))} == {
        jnp.dtype(jnp.float32)}
    for train in (False, True):
        logits, _ = jax.eval_shape(
            functools.partial(model.apply, train=train, mutable=["batch_stats"]),
            variables, IMAGES, rngs={"dropout": jax.random.key(0)})
        assert logits.shape == (2, NUM_CLASSES) and logits.dtype == jnp.float32


@pytest.mark.parametrize("key", CONCRETE)
def test_forward_pass(key):
    model = tiny(key)
    variables = init(model)
    for train in (False, True):
        logits, _ = apply(model, variables, images(1), train=train, seed=1,
                          mutable=["batch_stats"])
        assert logits.shape == (2, NUM_CLASSES) and logits.dtype == jnp.float32
        assert np.isfinite(np.asarray(logits)).all()


@pytest.mark.parametrize("options", [
    dict(pool="gap", posemb="sincos2d"),
    dict(pool="tok", posemb="sincos2d", representation_size=24, head_zeroinit=False),
    dict(remat_policy="minimal", attention_impl="xla"),
    dict(remat_policy="full", scan=True, attention_impl=None),
])
def test_vit_options_run_and_differentiate(options):
    model = tiny("vit", dropout=0.0, **options)
    x = images()
    params = init(model)["params"]

    def loss(params):
        return jnp.mean(model.apply({"params": params}, x, train=True) ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    if options.get("head_zeroinit", True):
        assert not np.asarray(nn.unbox(params)["head"]["kernel"]).any()


def test_resnet_stems_shape_the_feature_map():
    # The ImageNet stem downsamples 4x before the stages, the CIFAR stem not at all.
    for stem, final in (("imagenet", 1), ("cifar", 4)):
        model = build_model({"name": "resnet", "depth": 18, "width": 8, "stem": stem},
                            num_classes=NUM_CLASSES)
        variables = abstract_variables(model, IMAGES.shape)
        _, state = jax.eval_shape(functools.partial(
            model.apply, train=False, capture_intermediates=True), variables, IMAGES)
        last = state["intermediates"]["stage4_block2"]["__call__"][0]
        assert last.shape == (2, final, final, 64)


# --- Sharding metadata ---------------------------------------------------------

@pytest.mark.parametrize("key", sorted(TINY) + ["vit_scan"])
def test_every_parameter_carries_logical_names(key):
    config = {**TINY["vit"], "scan": True} if key == "vit_scan" else TINY[key]
    model = build_model(config, num_classes=NUM_CLASSES)
    variables = abstract_variables(model, IMAGES.shape)
    vocabulary = {name for name, _ in sharding.DEFAULT_RULES} | {None}
    leaves = boxed_leaves(variables["params"])
    assert leaves
    for leaf in leaves:
        assert isinstance(leaf, nn.LogicallyPartitioned), leaf
        assert len(leaf.names) == leaf.value.ndim, (leaf.names, leaf.value.shape)
        assert set(leaf.names) <= vocabulary, leaf.names
        named = [n for n in leaf.names if n is not None]
        assert len(named) == len(set(named)), f"{leaf.names} names an axis twice"
    if key == "vit_scan":
        blocks = boxed_leaves(variables["params"]["blocks"])
        assert all(leaf.names[0] == "layers" and leaf.value.shape[0] == 2 for leaf in blocks)
    # The trainer's path: abstract state -> shardings on an 8-device mesh.
    mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    shardings = sharding.logical_to_sharding(variables, mesh, sharding.DEFAULT_RULES)
    assert len(jax.tree.leaves(shardings)) == len(jax.tree.leaves(nn.unbox(variables)))


def test_vit_attention_names():
    params = abstract_variables(build_model(TINY["vit"], num_classes=NUM_CLASSES),
                                IMAGES.shape)["params"]
    attention = params["block_0"]["attention"]
    assert attention["query"]["kernel"].names == ("embed", "heads", "kv")
    assert attention["out"]["kernel"].names == ("heads", "kv", "embed")
    assert params["pos_embedding"].names == (None, "seq", "embed")
    assert params["cls"].names == (None, None, "embed")
    assert params["embedding"]["kernel"].names == (None, None, None, "embed")


# --- Behaviour -------------------------------------------------------------------

def test_scan_and_loop_compute_the_same_function():
    loop, scan = tiny("vit"), tiny("vit", scan=True)
    x = images()
    params = dict(nn.unbox(init(loop)["params"]))
    blocks = [params.pop(f"block_{i}") for i in range(loop.size.depth)]
    scan_params = {**params, "blocks": jax.tree.map(lambda *xs: jnp.stack(xs), *blocks)}
    assert jax.tree.map(jnp.shape, scan_params) == jax.tree.map(
        jnp.shape, nn.unbox(abstract_variables(scan, IMAGES.shape)["params"]))
    loop_params = {**params, **{f"block_{i}": b for i, b in enumerate(blocks)}}
    np.testing.assert_allclose(
        apply(loop, {"params": loop_params}, x, train=False),
        apply(scan, {"params": scan_params}, x, train=False), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key", ["mlp", "vit"])
def test_dropout_only_in_training(key):
    # A zero head would hide the dropout noise in the logits.
    model = tiny(key, head_zeroinit=False) if key == "vit" else tiny(key)
    x = images()
    variables = init(model)

    def run(train, seed):
        return np.asarray(apply(model, variables, x, train=train, seed=seed))

    np.testing.assert_array_equal(run(False, 1), run(False, 2))
    np.testing.assert_array_equal(run(False, 1), apply(model, variables, x, train=False))
    assert not np.allclose(run(True, 1), run(True, 2))
    np.testing.assert_array_equal(run(True, 1), run(True, 1))


def test_resnet_batch_stats_update_only_in_training():
    model = tiny("resnet18")
    x = images() * 3.0 + 1.0
    variables = init(model)
    before = variables["batch_stats"]
    _, updated = apply(model, variables, x, train=True, mutable=["batch_stats"])
    changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), before, updated["batch_stats"])
    assert all(jax.tree.leaves(changed))
    # Eval mode reads the statistics and writes nothing, so no collection has to
    # be mutable; asking for it anyway returns the statistics untouched.
    apply(model, variables, x, train=False)
    _, same = apply(model, variables, x, train=False, mutable=["batch_stats"])
    jax.tree.map(np.testing.assert_array_equal, before, same["batch_stats"])


def test_resnet_blocks_start_as_identity_with_zero_init():
    params = nn.unbox(init(tiny("resnet18"))["params"])
    assert not np.asarray(params["stage1_block1"]["bn2"]["scale"]).any()
    assert np.asarray(params["stage1_block1"]["bn1"]["scale"]).all()
    params = nn.unbox(init(tiny("resnet18", zero_init_residual=False))["params"])
    assert np.asarray(params["stage1_block1"]["bn2"]["scale"]).all()


# --- Errors ------------------------------------------------------------------------

@pytest.mark.parametrize("config,fragments", [
    (dict(name="convnext"), ["convnext", "linear", "mlp", "resnet", "vit"]),
    (dict(name="resnet", depth=20), ["depth=20", "18", "34", "50", "101", "152"]),
    (dict(name="resnet", stem="tiny"), ["stem", "imagenet", "cifar"]),
    (dict(name="resnet", depht=50), ["depht", "depth", "width"]),
    (dict(name="vit", variant="X/16"), ["X/16", "Ti", "S", "M", "B", "L", "H", "g", "G"]),
    (dict(name="vit", variant="B16"), ["B16", "<size>/<patch>"]),
    (dict(name="vit", pool="cls"), ["pool", "tok", "gap"]),
    (dict(name="vit", remat_policy="dots"), ["remat_policy", "none", "minimal", "full"]),
    (dict(name="vit", attention_impl="flash"), ["attention_impl", "xla", "cudnn"]),
    (dict(name="vit", variant="B/16", num_heads=5), ["num_heads=5", "768"]),
    (dict(name="mlp", activation="mish"), ["activation", "relu", "gelu", "silu", "swish"]),
    (dict(name="mlp", dropout=1.5), ["dropout"]),
    (dict(name="linear", num_classes=3), ["num_classes", "trainer"]),
])
def test_bad_configs_raise_naming_the_choices(config, fragments):
    with pytest.raises(ValueError) as error:
        build_model(config, num_classes=NUM_CLASSES)
    for fragment in fragments:
        assert fragment in str(error.value), (fragment, str(error.value))


def test_build_model_takes_config_dicts_and_registers_every_family():
    assert {"linear", "mlp", "cnn", "resnet", "vit"} <= set(MODELS)
    config = ml_collections.ConfigDict({"name": "mlp", "hidden": [8, 4], "activation": "tanh"})
    model = build_model(config, num_classes=3, param_dtype=jnp.bfloat16)
    assert model.hidden == (8, 4)
    params = nn.unbox(init(model)["params"])
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}


# --- FLOPs -------------------------------------------------------------------------

@pytest.mark.parametrize("pool", ["tok", "gap"])
def test_vit_analytic_flops_match_xla(pool):
    overrides = dict(depth=2)
    model = build_model({"name": "vit", "variant": "Ti/4", "pool": pool, **overrides},
                        num_classes=NUM_CLASSES)
    measured = flops.flops_per_example(model, abstract_variables(model, (1, 32, 32, 3)),
                                       (32, 32, 3))
    analytic = flops.vit_flops("Ti/4", 32, NUM_CLASSES, pool=pool, **overrides)
    # XLA also counts the elementwise work (LayerNorm, GELU, softmax): ~1-2% here.
    assert analytic["forward"] <= measured["forward"] <= 1.03 * analytic["forward"]
    assert analytic["forward_no_attention"] < analytic["forward"]
    assert measured["train"] == 3 * measured["forward"]


def test_flops_of_a_scanned_model_count_every_layer():
    config = {"name": "vit", "variant": "Ti/4", "depth": 2}
    counts = []
    for scan, impl in ((False, "xla"), (True, None)):
        model = build_model({**config, "scan": scan, "attention_impl": impl},
                            num_classes=NUM_CLASSES)
        counts.append(flops.flops_per_example(
            model, abstract_variables(model, (1, 32, 32, 3)), (32, 32, 3))["forward"])
    assert counts[0] == counts[1]


def test_published_flops():
    # ViT-B/16 at 224px: 17.56 GMACs (torchvision vit_b_16 `_ops` metadata).
    assert flops.vit_flops("B/16", 224, 1000)["forward"] / 2 == pytest.approx(17.56e9, rel=1e-3)
    # ResNet-50: 4.09 GMACs (torchvision resnet50 `_ops`); XLA's count of the
    # real model agrees to a few percent (it adds BN/ReLU/pooling work, and
    # counts the stem's max-pool window differently).
    model = build_model({"name": "resnet", "depth": 50}, num_classes=1000)
    measured = flops.flops_per_example(model, abstract_variables(model), (224, 224, 3))
    assert measured["forward"] / 2 == pytest.approx(4.09e9, rel=0.05)


def test_count_params_on_every_kind_of_tree():
    model = tiny("mlp")
    expected = 32 * 32 * 3 * 32 + 32 + 32 * 16 + 16 + 16 * NUM_CLASSES + NUM_CLASSES
    concrete = init(model)["params"]
    abstract = abstract_variables(model, IMAGES.shape)["params"]
    for tree in (concrete, nn.unbox(concrete), abstract, nn.unbox(abstract)):
        assert flops.count_params(tree) == expected


def test_cnn_counts_shapes_and_batch_norm():
    from vision_jax.models import CNN
    model = build_model({"name": "cnn", "channels": (8, 16)}, num_classes=5)
    assert isinstance(model, CNN)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 16, 16, 3)), train=False)
    # conv 3x3x3x8 + 8, conv 3x3x8x16 + 16, head 16x5 + 5
    assert flops.count_params(variables["params"]) == 27 * 8 + 8 + 72 * 16 + 16 + 16 * 5 + 5
    assert model.apply(variables, jnp.ones((2, 16, 16, 3)), train=False).shape == (2, 5)
    bn = build_model({"name": "cnn", "channels": (8,), "norm": "batch"}, num_classes=3)
    v = bn.init(jax.random.PRNGKey(0), jnp.zeros((2, 8, 8, 3)), train=False)
    _, updated = bn.apply(v, jnp.ones((2, 8, 8, 3)), train=True, mutable=["batch_stats"])
    assert "batch_stats" in updated
    with pytest.raises(ValueError, match="norm"):
        build_model({"name": "cnn", "norm": "weight"}, num_classes=3)
