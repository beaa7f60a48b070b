"""The Transformer, the published-model tables and the planner.

Counts are checked three ways: the analytic count equals the instantiated
model's for every preset (and for a grid of small configurations, scanned and
unrolled); the exact count matches the published one within the preset's
tolerance; analytic FLOPs match XLA's cost analysis on small models.
"""

import itertools
import json
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import flops
from vision_jax.models import transformer as tfm
from vision_jax.scaling import hardware, planner, presets, tables

LOGICAL_NAMES = {"batch", "embed", "mlp", "heads", "kv", "classes", "vocab", "conv_in",
                 "conv_out", "norm", "seq", "layers", None}
TINY = dict(vocab_size=97, d_model=32, num_heads=4, d_ff=64, num_layers=2, max_len=16)


def _init(cfg, batch=2, length=8):
    tokens = jnp.arange(batch * length, dtype=jnp.int32).reshape(batch, length) % cfg.vocab_size
    args = (tokens, tokens) if cfg.kind == "encoder_decoder" else (tokens,)
    return tfm.Transformer(cfg), args


# ----------------------------------------------------------------------------- the model

def _grid():
    """Every kind x position, with the other options cycling through their values."""
    blocks = [(True, False), (True, True), (False, False)]   # (pre_norm, parallel_block)
    for i, (kind, position) in enumerate(itertools.product(tfm.KINDS, tfm.POSITIONS)):
        for j in range(2):
            pre, parallel = blocks[(i + j) % 3]
            bias = (i + j) % 2 == 0
            yield tfm.TransformerConfig(
                **TINY, kind=kind, position=position, mlp=tfm.MLPS[(i + j) % 3],
                norm=tfm.NORMS[(i // 2 + j) % 2], pre_norm=pre, parallel_block=parallel,
                use_bias=bias, tie_embeddings=j == 0, num_kv_heads=(1, 2, None)[i % 3],
                embed_norm=not pre, num_segments=2 if kind == "encoder" else 0,
                pooler=kind == "encoder" and j == 1)


def test_analytic_params_equal_instantiated_on_a_grid():
    for cfg in _grid():
        model, args = _init(cfg)
        variables = jax.eval_shape(model.init, jax.random.key(0), *args)
        assert flops.count_params(variables["params"]) == tfm.param_counts(cfg)["total"], cfg


@pytest.mark.parametrize("kind", tfm.KINDS)
def test_scanned_equals_unrolled_and_names_are_logical(kind):
    cfg = tfm.TransformerConfig(**TINY, kind=kind, position="relative")
    counts = []
    for scan in (False, True):
        model, args = _init(cfg.replace(scan_layers=scan))
        variables = jax.eval_shape(model.init, jax.random.key(0), *args)
        counts.append(flops.count_params(variables["params"]))
        specs = jax.tree.leaves(nn.get_partition_spec(variables),
                                is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
        leaves = jax.tree.leaves(variables)
        assert len(specs) == len(leaves)  # every parameter carries names
        for spec in specs:
            assert spec and set(spec) <= LOGICAL_NAMES, spec
    assert counts[0] == counts[1] == tfm.param_counts(cfg)["total"]
    variables = jax.jit(model.init)(jax.random.key(0), *args)  # the scanned model runs
    out = jax.jit(model.apply)(variables, *args)
    assert out["logits"].shape == (2, 8, cfg.vocab_size)
    assert bool(jnp.all(jnp.isfinite(out["logits"])))


@pytest.mark.parametrize("position", tfm.POSITIONS)
def test_decoder_is_causal(position):
    cfg = tfm.TransformerConfig(**TINY, kind="decoder", position=position, num_kv_heads=2)
    model, (tokens,) = _init(cfg)
    variables = jax.jit(model.init)(jax.random.key(0), tokens)
    apply = jax.jit(model.apply)
    changed = tokens.at[:, 5:].set((tokens[:, 5:] + 1) % cfg.vocab_size)
    a = apply(variables, tokens)["logits"]
    b = apply(variables, changed)["logits"]
    np.testing.assert_allclose(a[:, :5], b[:, :5], atol=1e-5)
    assert not np.allclose(a[:, 5:], b[:, 5:])


def test_encoder_mask_hides_padding():
    cfg = tfm.TransformerConfig(**TINY, kind="encoder", position="learned")
    model, (tokens,) = _init(cfg)
    variables = jax.jit(model.init)(jax.random.key(0), tokens)
    apply = jax.jit(lambda v, t, m: model.apply(v, t, mask=m))
    mask = jnp.broadcast_to(jnp.arange(8)[None, :] < 6, tokens.shape)
    changed = tokens.at[:, 6:].set(0)
    a = apply(variables, tokens, mask)["logits"]
    b = apply(variables, changed, mask)["logits"]
    np.testing.assert_allclose(a[:, :6], b[:, :6], atol=1e-5)


def test_bad_config_errors_name_the_option():
    with pytest.raises(ValueError, match="position"):
        tfm.TransformerConfig(**{**TINY, "position": "alibi"})
    with pytest.raises(ValueError, match="num_kv_heads"):
        tfm.TransformerConfig(**TINY, num_kv_heads=3)
    with pytest.raises(ValueError, match="unknown Transformer config keys"):
        tfm.from_mapping({**TINY, "n_layer": 3})


# ----------------------------------------------------------------------------- FLOPs vs XLA

FLOP_CONFIGS = {
    "gpt": dict(kind="decoder", position="learned", mlp="gelu"),
    "palm": dict(kind="decoder", position="rotary", mlp="swiglu", num_kv_heads=1,
                 parallel_block=True, use_bias=False, norm="rmsnorm"),
    "bert": dict(kind="encoder", position="learned", pre_norm=False, embed_norm=True,
                 num_segments=2, pooler=True),
    "xl": dict(kind="decoder", position="relative"),
    "vaswani": dict(kind="encoder_decoder", position="sinusoidal", mlp="relu", pre_norm=False),
}


@pytest.mark.parametrize("name", sorted(FLOP_CONFIGS))
def test_analytic_flops_match_xla(name):
    cfg = tfm.TransformerConfig(vocab_size=512, d_model=256, num_heads=4, d_ff=1024,
                                num_layers=2, max_len=64, **FLOP_CONFIGS[name])
    batch, length = 2, 64
    model, args = _init(cfg, batch, length)
    variables = jax.eval_shape(model.init, jax.random.key(0), *args)
    abstract_args = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args]
    compiled = jax.jit(lambda v, *a: model.apply(v, *a)).lower(
        nn.unbox(variables), *abstract_args).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    xla = float(cost["flops"])
    analytic = tfm.flops_per_token(cfg, length)["forward"] * batch * length
    if cfg.position == "relative":
        # projecting the 2T-1 distance sinusoids happens once per batch, which a per-token
        # count leaves out: 2 FLOPs x layers x (2T-1) x d x heads x head_dim
        analytic += 2 * cfg.num_layers * (2 * length - 1) * cfg.d_model * cfg.num_heads * cfg.d_head
    # XLA also counts elementwise work (norms, softmax, activations): a few percent above.
    assert analytic <= xla * 1.001
    assert xla / analytic - 1 < 0.04, (xla, analytic)


# ----------------------------------------------------------------------------- presets and tables

@pytest.fixture(scope="module")
def store():
    return tables.CountStore()


@pytest.fixture(scope="module")
def table(store):
    return {r["name"]: r for r in tables.rows(store=store)}


def test_stored_counts_are_current(table, store):
    # Every row read its traced counts from the stored file: none was out of date.
    assert set(store.stored) == set(table)
    assert not store.traced, f"stored counts out of date: run `{tables.WRITE_COMMAND}`"


def _row_of(preset, store):
    if preset in presets.LANGUAGE_MODELS:
        return tables.lm_row(preset, store)
    return (tables.vision_row if preset in presets.VIT_MODELS else tables.cnn_row)(preset, store)


def test_stored_counts_equal_a_recount(table):
    # One preset per model file, traced again: the rows equal those built from the stored
    # counts. The fingerprints (previous test) re-trace any model whose code changed; this
    # checks that what is stored is what tracing gives. (Every LM and ViT row is also held
    # equal to its analytic count, and the analytic LM count to the instantiated one on a
    # grid of every kind: one Transformer suffices here.)
    from vision_jax.models import build_model
    firsts = {tfm.__name__: presets.LANGUAGE_MODELS[0]}
    # The shallowest of each file: tracing time grows with the number of layers.
    for p in sorted(presets.VISION_MODELS, key=lambda p: (table[p.name]["layers"], p.name)):
        firsts.setdefault(type(build_model(p.model, num_classes=p.num_classes)).__module__, p)
    assert len(firsts) >= 10
    recount = tables.CountStore(recount=True)
    for p in firsts.values():
        assert _row_of(p, recount) == table[p.name], p.name
    assert set(recount.traced) == {p.name for p in firsts.values()}


def test_out_of_date_counts_are_traced_and_written(table, tmp_path, capsys):
    lenet = presets.by_name("LeNet-5")
    path = tmp_path / "counts.json"
    entry = tables.CountStore().stored["LeNet-5"]
    path.write_text(json.dumps({"LeNet-5": {"key": "old", "counts": {**entry["counts"],
                                                                      "macs": 1}}}))
    store = tables.CountStore(path)
    assert tables.cnn_row(lenet, store) == table["LeNet-5"]     # traced, not read
    assert store.stale() == ["LeNet-5"]
    store.write()
    assert json.loads(path.read_text()) == {"LeNet-5": entry}
    again = tables.CountStore(path)
    assert tables.cnn_row(lenet, again) == table["LeNet-5"] and not again.traced


def test_every_preset_matches_its_published_count(table):
    assert len(table) == len(presets.LANGUAGE_MODELS) + len(presets.VISION_MODELS)
    for name, r in table.items():
        # Every LM and ViT has a hand-written count; of the CNNs, the plain ResNets.
        if r["family"] != "cnn" or name.startswith("ResNet-"):
            assert r["params"] == r["params_analytic"], name
        if r["published_params"] is None:
            continue
        assert abs(r["rel_diff"]) <= r["tolerance"], (name, r["rel_diff"])
        if r["tolerance"] > 0.01:  # a looser tolerance must come with its explanation
            assert len(r["note"]) > 40, name


def test_exact_counts_where_the_source_gives_them(table):
    # PaLM Table 1 prints 540.35B (we count 540.356B: the table truncates); torchvision
    # prints exact counts.
    assert abs(table["PaLM 540B"]["params"] - 540.35e9) < 0.01e9
    for depth, exact in ((18, 11_689_512), (50, 25_557_032), (152, 60_192_808)):
        assert table[f"ResNet-{depth}"]["params"] == exact
    assert table["ViT-B/16"]["params"] == 86_567_656
    assert table["RoBERTa-Large"]["params"] == 355_359_744   # the released checkpoint


@pytest.mark.parametrize("name, layers, d, ffn, heads, released", [
    ("Llama 3 8B", 32, 4096, 14_336, 32, 8_030_261_248),
    ("Llama 3 70B", 80, 8192, 28_672, 64, 70_553_706_496),
    ("Llama 3 405B", 126, 16_384, 53_248, 128, 405_853_388_800),
])
def test_llama3_counts_from_the_architecture(table, name, layers, d, ffn, heads, released):
    # Llama 3 paper, Table 3: 8 KV heads of 128 (d / heads), SwiGLU; vocabulary 128,256;
    # untied input and output embeddings, RMSNorm weights only, no biases, RoPE.
    vocab, kv = 128_256, 8
    head_dim = d // heads
    attention = 2 * d * heads * head_dim + 2 * d * kv * head_dim   # q, out; k, v
    layer = attention + 3 * d * ffn + 2 * d                        # + SwiGLU + two RMSNorms
    by_hand = layers * layer + d + 2 * vocab * d                   # + final norm + embeddings
    r = table[name]
    assert r["params"] == r["params_analytic"] == by_hand == released
    assert r["rel_diff"] == 0.0
    assert (r["layers"], r["width"], r["heads"], r["kv_heads"]) == (layers, d, heads, kv)
    assert r["non_embedding_params"] == by_hand - 2 * vocab * d


def test_llama3_planner_rows():
    rows = {r["name"]: r for r in planner.reconcile()}
    assert rows["Llama 3 8B"]["tokens"] == 15e12 and rows["Llama 3 405B"]["tokens"] == 15.6e12
    assert rows["Llama 3 405B"]["chips"] == 16_384 and rows["Llama 3 405B"]["chip"] == "H100"
    # 6ND for the 405B run: 6 x 405.85e9 x 15.6e12 = 3.80e25 FLOPs (the paper: 3.8e25)
    assert rows["Llama 3 405B"]["train_flops_6nd"] == pytest.approx(3.80e25, rel=2e-3)
    text = tables.format_table([tables.lm_row(presets.LLAMA3_8B)])
    assert "32/8kv" in text


def test_lecture_architectures(table):
    expected = {  # name: (layers, width, heads) of the lecture table, where it agrees
        "BERT-Base": (12, 768, 12), "BERT-Large": (24, 1024, 16), "XLNet-Large": (24, 1024, 16),
        "RoBERTa-Large": (24, 1024, 16), "GPT-2 1.5B": (48, 1600, 25),
        "Megatron-LM 8.3B": (72, 3072, 32), "Turing-NLG 17B": (78, 4256, 28),
        "GPT-3 175B": (96, 12288, 96), "Gopher 280B": (80, 16384, 128),
        "PaLM 540B": (118, 18432, 48),
    }
    for name, (layers, width, heads) in expected.items():
        r = table[name]
        assert (r["layers"], r["width"], r["heads"]) == (layers, width, heads), name
    assert table["Transformer-Base"]["layers"] == "6+6"


def test_kaplan_non_embedding_and_6n_rule(table):
    gpt3 = table["GPT-3 175B"]
    d, layers = 12288, 96
    # Kaplan et al. eq. 2.1: N ~ 12 L d^2 (biases and norms add ~0.01%)
    assert math.isclose(gpt3["non_embedding_params"], 12 * layers * d * d, rel_tol=1e-3)
    # forward without attention = 2 N_non-embedding + 2 d V (the unembedding)
    expected = 2 * (12 * layers * d * d) + 2 * d * 50257
    assert math.isclose(gpt3["flops_forward_no_attention"], expected, rel_tol=1e-3)
    # attention term at 2048 context: 2 x 2 x L x ctx x d
    attn = gpt3["flops_per_token_or_image"] - gpt3["flops_forward_no_attention"]
    assert math.isclose(attn, 4 * layers * 2048 * d, rel_tol=1e-9)


def test_tables_main_json(capsys):
    assert tables.main(["--format", "json", "--only", "lm"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(presets.LANGUAGE_MODELS)
    for r in rows:
        for key in ("name", "layers", "width", "heads", "params", "published_params",
                    "rel_diff", "flops_per_token_or_image", "source"):
            assert key in r


# ----------------------------------------------------------------------------- planner

def test_planner_hand_checked():
    # GPT-3-sized run: 6 x 175e9 x 300e9 = 3.15e23 FLOPs. On 1024 A100s (312e12 FLOP/s dense
    # bf16) at 50% MFU: 3.15e23 / (1024 x 312e12 x 0.5) = 3.15e23 / 1.59744e17 = 1,971,905 s,
    # i.e. 22.82 days.
    flops = planner.training_flops_6nd(175e9, 300e9)
    assert flops == pytest.approx(3.15e23)
    seconds = planner.wall_clock_seconds(flops, hardware.chip("A100"), 1024, 0.5)
    assert seconds == pytest.approx(1_971_905, rel=1e-6)
    assert seconds / planner.DAY == pytest.approx(22.823, rel=1e-4)
    # and back: the MFU that makes it take 22.823 days is 50%
    assert planner.mfu_for(flops, hardware.chip("a100"), 1024, seconds) == pytest.approx(0.5)

    # RoBERTa row: 100K steps x 8192 x 512 = 4.194304e11 tokens; 6ND with N = 355,359,744 is
    # 6 x 355,359,744 x 4.194304e11 = 8.943e20 FLOPs; 1024 V100s x 125e12 x 86,400 s = 1.106e22
    # FLOPs of peak in a day, so 6ND alone implies an MFU of 8.943e20 / 1.106e22 = 8.09%.
    row = {r["name"]: r for r in planner.reconcile()}["RoBERTa-Large"]
    assert row["tokens"] == 4.194304e11
    assert row["train_flops_6nd"] == pytest.approx(8.943e20, rel=1e-3)
    assert row["train_flops_6nd"] / (1024 * 125e12 * 86_400) == pytest.approx(0.0809, rel=1e-2)
    # the analytic count adds attention and the untied-free logits: a little more
    assert row["train_flops"] > row["train_flops_6nd"]
    assert row["mfu_to_match"] == pytest.approx(row["train_flops"] / (1024 * 125e12 * 86_400))

    # Memory: 7e9 fp32 parameters with Adam over fsdp=8: (4 + 4 + 8) x 7e9 / 8 = 14 GB.
    mem = planner.memory_per_chip(7e9, planner.Sharding(fsdp=8))
    assert mem["total"] == pytest.approx(14e9)
    # Korthikanti et al. eq. 2, t=1: s b h (34 + 5 a s / h); s=2048, b=1, h=4096, a=32, 1 layer:
    # 2048 x 4096 x (34 + 5 x 32 x 2048 / 4096) = 8,388,608 x 114 = 956,301,312 bytes.
    mem = planner.memory_per_chip(0, planner.Sharding(), layers=1, width=4096, heads=32,
                                  seq_len=2048)
    assert mem["activations"] == 956_301_312


def test_plan_main_json(capsys):
    assert planner.main(["--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"] for r in rows} >= {"Transformer-Base", "Gopher 280B", "RoBERTa-Large"}
    for r in rows:
        for key in ("name", "chip", "chips", "tokens", "published_days", "estimated_days",
                    "mfu_to_match", "tokens_source"):
            assert key in r
    assert planner.main(["--model", "PaLM 540B", "--tokens", "780e9", "--chip", "TPUv4",
                         "--fsdp", "768", "--tensor", "8", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["chips"] == 6144 and result["days"] > 0


def test_hardware_table_is_complete():
    for name in ("P100", "V100", "A100", "H100", "H200", "TPUv3", "TPUv4", "TPUv5e", "TPUv5p",
                 "TPUv6e"):
        c = hardware.chip(name)
        assert c.peak_flops > 1e13 and c.memory_bytes >= 16e9 and c.source
    with pytest.raises(ValueError, match="valid"):
        hardware.chip("K80")



def test_resnet_flops_match_he_et_al(table):
    # He et al. 2016 Table 1 gives multiply-adds to two digits: 1.8e9 (18) and 3.6e9 (34). The
    # basic-block ResNets are the same in v1 and v1.5, so the counts must agree to rounding.
    for depth in (18, 34):
        r = table[f"ResNet-{depth}"]
        assert r["macs"] == pytest.approx(presets.HE_TABLE1_MACS[depth], rel=0.02)
    # bottleneck depths stride in the 3x3 conv here (v1.5): more than the paper's v1 figures
    assert table["ResNet-50"]["macs"] > presets.HE_TABLE1_MACS[50]


# ----------------------------------------------------------------------------- CNN table

CNN_KEYS = ("name", "layers", "width", "heads", "params", "published_params", "rel_diff",
            "flops_per_token_or_image", "source", "published_flops", "flops_rel_diff",
            "macs", "published_macs", "image_size", "flops_source", "params_source")


def test_cnn_table_covers_the_zoo(table):
    from vision_jax.models import efficientnet, regnet, resnet
    names = {p.name for p in presets.CNN_MODELS}
    assert {"LeNet-5", "AlexNet", "GoogLeNet", "MobileNet v1 1.0", "MobileNet v2 1.0",
            "MobileNet v3 large", "MobileNet v3 small"} <= names
    assert {f"ResNet-{d}" for d in (18, 34, 50, 101, 152)} <= names
    assert {f"VGG-{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")} <= names
    assert {f"ResNeXt-{n.replace('_', ' ')}" for n in resnet.RESNEXTS} <= names
    assert {f"EfficientNet-{v}" for v in efficientnet.VARIANTS} <= names
    assert {f"RegNet{v}" for v in regnet.VARIANTS} <= names
    # The ResNets are the vision presets themselves, not copies.
    assert sum(p.name.startswith("ResNet-") for p in presets.VISION_MODELS) == 5
    for name in names:
        assert table[name]["family"] == "cnn"
    # Native resolutions: EfficientNet's own, LeNet-5's 32x32 grey digits.
    for v, (_, _, resolution, _) in efficientnet.VARIANTS.items():
        assert table[f"EfficientNet-{v}"]["image_size"] == resolution
    assert (table["LeNet-5"]["image_size"], presets.by_name("LeNet-5").channels) == (32, 1)


def test_cnn_counts_match_the_published_ones(table):
    cnn = [table[p.name] for p in presets.CNN_MODELS]
    for r in cnn:
        # torchvision prints exact counts: ours equal them; papers round (tolerance, noted).
        if r["params_source"] == presets.TORCHVISION:
            assert r["params"] == r["published_params"], r["name"]
        assert abs(r["rel_diff"]) <= r["tolerance"], (r["name"], r["rel_diff"])
        assert r["flops_per_token_or_image"] == 2 * r["macs"]
        assert r["published_flops"] == pytest.approx(2 * r["published_macs"])
        assert abs(r["flops_rel_diff"]) <= r["flops_tolerance"], (r["name"], r["flops_rel_diff"])
        if max(r["tolerance"], r["flops_tolerance"]) > 0.01:  # a looser bound is explained
            assert len(r["note"]) > 80, r["name"]
    # torchvision's GFLOPS are multiply-accumulates to three decimals: ResNet-50 4.089.
    assert table["ResNet-50"]["macs"] == pytest.approx(4.089e9, abs=0.5e6)
    assert table["EfficientNet-B7"]["macs"] == pytest.approx(37.746e9, abs=5e6)
    # The LeNet-5 outlier is the modern rebuild (vision_jax/models/lenet.py), worked out:
    # C1 28*28*6*25 + C3 10*10*16*150 + C5 120*400 + F6 120*84 + output 84*10.
    lenet = table["LeNet-5"]
    assert lenet["macs"] == 117_600 + 240_000 + 48_000 + 10_080 + 840
    assert lenet["params"] == 61_706 and lenet["published_params"] == 60_000
    assert lenet["flops_tolerance"] > 0.2 and "C3" in lenet["note"]


def test_traced_counts_equal_the_analytic_resnet(table):
    for depth in (18, 34, 50, 101, 152):
        r = table[f"ResNet-{depth}"]
        assert r["params"] == r["params_analytic"]
        assert r["flops_per_token_or_image"] == r["flops_analytic"]


class _Toy(nn.Module):
    """A hand-countable net: grouped strided conv, depthwise conv, scanned dense layers."""

    @nn.compact
    def __call__(self, x, *, train):
        x = nn.Conv(8, (3, 3), strides=2, padding=1, feature_group_count=2)(x)  # 4 -> 8 ch
        x = nn.Conv(8, (5, 5), padding=2, feature_group_count=8)(x)             # depthwise
        x = jnp.mean(x, axis=(1, 2))

        class Layer(nn.Module):
            @nn.compact
            def __call__(self, h, _):
                return nn.relu(nn.Dense(8)(h)), None

        x, _ = nn.scan(Layer, variable_axes={"params": 0}, split_rngs={"params": True},
                       length=3)()(x, None)
        return nn.Dense(10)(x)


def test_traced_counts_by_hand():
    counts = tables.traced_counts(_Toy(), (16, 16, 4))
    # 8x8 output x 8 features x 9 taps x 2 input channels per group; 8x8 x 8 x 25 x 1;
    # a scanned 8 -> 8 dense layer three times; the 8 -> 10 head.
    assert counts["macs"] == 8 * 8 * 8 * 9 * 2 + 8 * 8 * 8 * 25 + 3 * 8 * 8 + 8 * 10
    assert counts["params"] == (9 * 2 * 8 + 8) + (25 * 8 + 8) + 3 * (64 + 8) + (80 + 10)
    assert (counts["layers"], counts["width"]) == (2 + 3 + 1, 8)


def test_cnn_json_and_text(table, capsys, monkeypatch):
    small = tuple(p for p in presets.CNN_MODELS if p.name in ("LeNet-5", "MobileNet v3 small"))
    monkeypatch.setattr(presets, "CNN_MODELS", small)
    assert tables.main(["--format", "json", "--only", "cnn"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in out] == ["LeNet-5", "MobileNet v3 small"]
    for r in out:
        for key in CNN_KEYS:
            assert key in r, key
        assert r["heads"] is None and r["flops_unit"] == "image"
    assert out[0] == json.loads(json.dumps(table["LeNet-5"]))
    text = tables.format_table([table[p.name] for p in presets.CNN_MODELS] + [table["ViT-B/16"]])
    assert "MACs" in text and "GFLOPS" in text and "multiply-accumulates" in text
    assert "LeNet-5 [" in text and "ViT-B/16 [" in text
    with pytest.raises(ValueError, match="valid choices"):
        list(tables.rows("resnets"))


# ----------------------------------------------------------------------------- generated docs

def test_generated_blocks_equal_what_the_commands_print():
    from vision_jax.scaling import readme
    texts = {p.name: p.read_text() for p in readme.documents()}
    assert {"README.md", "SCALING.md"} <= set(texts)
    assert sum(t.count("<!-- generated: vision-jax") for t in texts.values()) >= 4
    for name, text in texts.items():
        _, changed = readme.regenerate(text)
        assert not changed, (f"{name}: {[spec for _, spec, _, _ in changed]} differ from what "
                             "the commands print; `python -m vision_jax.scaling.readme --write`")
    # A stale figure is found, and regenerating puts back what the command prints.
    stale = "<!-- generated: vision-jax plan --format json | mfu -->\nGopher 280B 33.9%.\n" \
            "<!-- end generated -->\n"
    fixed, changed = readme.regenerate("intro\n" + stale)
    assert [(line, spec) for line, spec, _, _ in changed] == [(2, "vision-jax plan --format json | mfu")]
    assert "33.9%" not in fixed and "Gopher 280B" in fixed and not readme.regenerate(fixed)[1]
