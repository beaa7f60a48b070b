"""Published models as data: architecture, published figures, and where each came from.

Each language-model preset is a `TransformerConfig` that follows the paper's
architecture, with the source of every hyperparameter in a comment. Beside it
sits what was published: the parameter count the row is checked against
(`Published.params`, from the paper unless said otherwise), and the figures of
the lecture table this module reproduces (layers / width / heads / params /
data / hardware / time). Where the lecture and the paper disagree, the
architecture follows the paper and `note` says what differs and why.

`tolerance` is the relative gap allowed between our exact count and the
published one. It is 1% unless the published number is known to be off for a
stated reason (rounded in the paper, a different vocabulary, parts of the model
the paper does not describe); tests/test_scaling_tables.py asserts it.

Vision rows are built through `vision_jax.models.build_model`, so they count the
models this codebase trains.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from vision_jax.models.transformer import TransformerConfig


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of training: `tokens` tokens (or examples) at context `context`."""

    tokens: float
    context: int | None = None


@dataclasses.dataclass(frozen=True)
class Training:
    """Published training run: hardware, wall-clock time and amount of data.

    `phases` is empty when no source we checked gives the number of tokens;
    the planner then says so instead of guessing.
    """

    chip: str | None                 # key of vision_jax.scaling.hardware.CHIPS
    chips: int | None
    days: float | None
    source: str
    phases: tuple[Phase, ...] = ()
    tokens_source: str = "not published in the sources checked"
    published_mfu: float | None = None


@dataclasses.dataclass(frozen=True)
class Published:
    params: float | None             # the count the row is checked against
    params_source: str
    lecture: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tolerance: float = 0.01


@dataclasses.dataclass(frozen=True)
class LMPreset:
    name: str
    config: TransformerConfig
    published: Published
    source: str                      # whose architecture the config follows
    note: str = ""                   # discrepancies with the lecture table, explained
    training: Training | None = None
    context: int | None = None       # context for FLOPs per token (default: config.max_len)

    @property
    def seq_len(self) -> int:
        return self.context if self.context is not None else self.config.max_len


@dataclasses.dataclass(frozen=True)
class VisionPreset:
    name: str
    model: Mapping[str, Any]         # config for vision_jax.models.build_model
    published: Published
    source: str
    note: str = ""
    image_size: int = 224
    num_classes: int = 1000
    published_flops: float | None = None  # forward FLOPs (2 x MACs) per image, if published


def _lecture(layers, width, heads, params, data=None, hardware=None, time=None):
    return {"layers": layers, "width": width, "heads": heads, "params": params,
            "data": data, "hardware": hardware, "time": time}


# ----------------------------------------------------------------------------- language models

VASWANI = "Vaswani et al. 2017, Attention Is All You Need"

_TRANSFORMER = dict(
    kind="encoder_decoder",
    vocab_size=37_000,       # sec. 5.1: shared source-target BPE vocabulary of "about 37000" (EN-DE)
    position="sinusoidal",   # sec. 3.5
    mlp="relu",              # sec. 3.3, eq. 2
    pre_norm=False,          # sec. 3.1: LayerNorm(x + Sublayer(x))
    tie_embeddings=True,     # sec. 3.4: embeddings and pre-softmax matrix shared
    scale_embeddings=True,   # sec. 3.4: embeddings multiplied by sqrt(d_model)
    max_len=256,             # no context length is published; 256 is a nominal sentence-pair length
)

TRANSFORMER_BASE = LMPreset(
    name="Transformer-Base",
    # Table 3, row "base": N=6, d_model=512, d_ff=2048, h=8, d_k=d_v=64.
    config=TransformerConfig(num_layers=6, d_model=512, d_ff=2048, num_heads=8, **_TRANSFORMER),
    published=Published(
        params=65e6, params_source=f"{VASWANI}, Table 3",
        lecture=_lecture("12 (6+6)", 512, 8, "65M", None, "8x P100", "12 hours"),
        tolerance=0.035),
    source=VASWANI,
    note=("With the paper's shared 37k vocabulary the model has 63.1M parameters, 2.9% below the "
          "65M of Table 3. The paper gives the vocabulary only as 'about 37000' and does not say "
          "how it counted; 65M corresponds to a ~40.7k vocabulary. The lecture's '12 layers' counts "
          "6 encoder + 6 decoder layers."),
    training=Training(
        chip="P100", chips=8, days=0.5, source=f"{VASWANI}, sec. 5.2 (100k steps, 12 hours)",
        # sec. 5.1: batches of ~25,000 source + ~25,000 target tokens; a 'token' here is one
        # source+target pair (see transformer.flops_per_token).
        phases=(Phase(100_000 * 25_000),),
        tokens_source="sec. 5.1-5.2: 100k steps x ~25k source/target token pairs"),
)

TRANSFORMER_BIG = LMPreset(
    name="Transformer-Big",
    # Table 3, row "big": N=6, d_model=1024, d_ff=4096, h=16.
    config=TransformerConfig(num_layers=6, d_model=1024, d_ff=4096, num_heads=16, **_TRANSFORMER),
    published=Published(
        params=213e6, params_source=f"{VASWANI}, Table 3",
        lecture=_lecture("12 (6+6)", 1024, 16, "213M", None, "8x P100", "3.5 days")),
    source=VASWANI,
    note="The lecture calls this model 'Transformer-Large'; the paper calls it 'big'.",
    training=Training(
        chip="P100", chips=8, days=3.5, source=f"{VASWANI}, sec. 5.2 (300k steps, 3.5 days)",
        phases=(Phase(300_000 * 25_000),),
        tokens_source="sec. 5.1-5.2: 300k steps x ~25k source/target token pairs"),
)

DEVLIN = "Devlin et al. 2019, BERT"
_BERT = dict(
    kind="encoder",
    vocab_size=30_522,   # released uncased WordPiece vocab.txt (sec. 3 says "30,000")
    max_len=512,         # App. A.2: maximum sequence length 512, learned positions
    num_segments=2,      # sec. 3: sentence A/B segment embeddings
    position="learned",
    mlp="gelu",          # sec. 3: follows GPT (Radford et al. 2018), GELU
    pre_norm=False,      # post-LN as in Vaswani et al.
    embed_norm=True,     # LayerNorm over the summed embeddings (released code)
    pooler=True,         # tanh dense layer over [CLS] used for next-sentence prediction
    norm_eps=1e-12,      # released bert_config.json
)
# App. A.2: 256 sequences x 512 tokens (128k tokens) per batch for 1M steps, but 90% of the
# steps at sequence length 128 and the last 10% at 512.
_BERT_PHASES = (Phase(0.9 * 1e6 * 256 * 128, 128), Phase(0.1 * 1e6 * 256 * 512, 512))

BERT_BASE = LMPreset(
    name="BERT-Base",
    # sec. 3: L=12, H=768, A=12, total parameters 110M; d_ff = 4H.
    config=TransformerConfig(num_layers=12, d_model=768, num_heads=12, d_ff=3072, **_BERT),
    published=Published(
        params=110e6, params_source=f"{DEVLIN}, sec. 3",
        lecture=_lecture(12, 768, 12, "110M", "13 GB")),
    source=DEVLIN,
    note=("Counted like the released BertModel (encoder + pooler, no pre-training heads): "
          "109.5M. The lecture's 13 GB of data: RoBERTa (Liu et al. 2019) puts BERT's "
          "BooksCorpus + Wikipedia at 16 GB."),
    training=Training(
        chip="TPUv2", chips=16, days=4.0,
        source=f"{DEVLIN}, App. A.2 (4 Cloud TPUs = 16 chips, 4 days)",
        phases=_BERT_PHASES,
        tokens_source=("App. A.2: 1M steps x 256 sequences, 90% at 128 tokens, 10% at 512 "
                       "(42.6B tokens; the headline 128k tokens/batch x 1M steps would be 128B)")),
)

BERT_LARGE = LMPreset(
    name="BERT-Large",
    # sec. 3: L=24, H=1024, A=16, total parameters 340M.
    config=TransformerConfig(num_layers=24, d_model=1024, num_heads=16, d_ff=4096, **_BERT),
    published=Published(
        params=340e6, params_source=f"{DEVLIN}, sec. 3",
        lecture=_lecture(24, 1024, 16, "340M", "13 GB"), tolerance=0.015),
    source=DEVLIN,
    note=("The released BERT-Large has 335.1M parameters (336.2M with the MLM/NSP heads), "
          "1.4% below the paper's '340M': the paper rounds loosely. The same architecture with "
          "RoBERTa's 50k vocabulary is 355M, RoBERTa's published figure."),
    training=Training(
        chip="TPUv2", chips=64, days=4.0,
        source=f"{DEVLIN}, App. A.2 (16 Cloud TPUs = 64 chips, 4 days)",
        phases=_BERT_PHASES,
        tokens_source="App. A.2, as BERT-Base"),
)

XLNET = "Yang et al. 2019, XLNet (NeurIPS version)"
XLNET_LARGE = LMPreset(
    name="XLNet-Large",
    # sec. 3.1 / App. A.4 (Table 7): 24 layers, hidden 1024, 16 heads, head size 64, FFN 4096;
    # Transformer-XL relative positions; SentencePiece vocabulary of 32,000.
    config=TransformerConfig(
        kind="encoder", num_layers=24, d_model=1024, num_heads=16, d_ff=4096, vocab_size=32_000,
        position="relative", mlp="gelu", pre_norm=False, max_len=512, tie_embeddings=True),
    published=Published(
        params=340e6, params_source="lecture table ('~340M'); the paper says only 'same size as BERT-Large'",
        lecture=_lecture(24, 1024, 16, "~340M", "126 GB", "512x TPU-v3", "2.5 days"),
        tolerance=0.07),
    source=XLNET,
    note=("The paper never states a count; it says XLNet-Large has BERT-Large's hyperparameters. "
          "Transformer-XL relative attention adds a d x d position projection per layer (25M in "
          "all), so the backbone is 360.3M, 6% above '~340M'. Not modelled: the relative segment "
          "encodings (3 x 1024 per layer, 74k) and two-stream attention (no parameters). "
          "Training time: the NeurIPS paper says 5.5 days at batch 8192; the lecture's 2.5 days "
          "does not match it (it may come from an earlier preprint)."),
    training=Training(
        chip="TPUv3", chips=512, days=5.5,
        source=f"{XLNET}, sec. 3.1 (512 TPU v3 chips, 500K steps, batch 8192, ~5.5 days)",
        phases=(Phase(500_000 * 8192 * 512, 512),),
        tokens_source="sec. 3.1: 500K steps x 8192 sequences x 512 tokens"),
)

ROBERTA = "Liu et al. 2019, RoBERTa"
ROBERTA_LARGE = LMPreset(
    name="RoBERTa-Large",
    # sec. 4.1 / App. Table 9: BERT-Large architecture (L=24, H=1024, A=16), byte-level BPE of
    # 50K units (released dict: 50,265); 514 position rows (fairseq offsets positions by 2); one
    # segment type.
    config=TransformerConfig(
        num_layers=24, d_model=1024, num_heads=16, d_ff=4096,
        **{**_BERT, "vocab_size": 50_265, "max_len": 514, "num_segments": 1, "norm_eps": 1e-5}),
    published=Published(
        params=355e6, params_source=f"{ROBERTA}, Table 9 caption / model card",
        lecture=_lecture(24, 1024, 16, "355M", "160 GB", "1024x V100", "1 day")),
    source=ROBERTA,
    context=512,
    note=("The lecture pairs 160 GB with '1 day on 1024 V100s'; in the paper the one-day run "
          "is the 100K-step run on BERT's 16 GB (sec. 5). The final model trained for 500K steps."),
    training=Training(
        chip="V100", chips=1024, days=1.0,
        source=f"{ROBERTA}, sec. 5 (1024 V100 GPUs, ~1 day, 100K steps, batch 8K)",
        phases=(Phase(100_000 * 8192 * 512, 512),),
        tokens_source="sec. 5: 100K steps x 8K sequences x 512 tokens"),
)

GPT2 = "Radford et al. 2019, Language Models are Unsupervised Multitask Learners"
GPT2_XL = LMPreset(
    name="GPT-2 1.5B",
    # Table 2: 48 layers, d_model 1600; sec. 2.3: vocabulary 50,257, context 1024, pre-LN with a
    # final LayerNorm. Heads: the released hparams.json has n_head=25.
    config=TransformerConfig(
        kind="decoder", num_layers=48, d_model=1600, num_heads=25, d_ff=6400, vocab_size=50_257,
        max_len=1024, position="learned", mlp="gelu", norm_eps=1e-5),
    published=Published(
        params=1542e6, params_source=f"{GPT2}, Table 2 ('1542M')",
        lecture=_lecture(48, 1600, "? (25 released)", "1.5B", "40 GB"), tolerance=0.015),
    source=GPT2,
    note=("The released model has 1,557.6M parameters, 1.0% above Table 2's 1542M; Table 2 "
          "undercounts every size (its 117M small model has 124.4M). The paper gives no head "
          "count; 25 is the released configuration."),
)

MEGATRON = "Shoeybi et al. 2019, Megatron-LM"
MEGATRON_8B = LMPreset(
    name="Megatron-LM 8.3B",
    # Table 2: 72 layers, hidden 3072, 32 heads; sec. 5: GPT-2 architecture, context 1024,
    # vocabulary padded from 50,257 to 51,200 (divisible by 128 x 8 model-parallel ranks).
    config=TransformerConfig(
        kind="decoder", num_layers=72, d_model=3072, num_heads=32, d_ff=12288, vocab_size=51_200,
        max_len=1024, position="learned", mlp="gelu", norm_eps=1e-5),
    published=Published(
        params=8.3e9, params_source=f"{MEGATRON}, Table 2",
        lecture=_lecture(72, 3072, 32, "8.3B", "174 GB", "512x V100", "9 days")),
    source=MEGATRON,
    training=Training(chip="V100", chips=512, days=9.0,
                      source="lecture table (the paper reports throughput, not a total time)"),
)

TURING = "Microsoft Research blog, Turing-NLG: A 17-billion-parameter language model (Feb 2020)"
TURING_NLG = LMPreset(
    name="Turing-NLG 17B",
    # Blog post: 78 layers, hidden 4256, 28 heads; built on Megatron-LM/DeepSpeed, so GPT-2 style
    # blocks. Vocabulary and context are not published: GPT-2's 50,257 and 1024 assumed.
    config=TransformerConfig(
        kind="decoder", num_layers=78, d_model=4256, num_heads=28, d_ff=4 * 4256,
        vocab_size=50_257, max_len=1024, position="learned", mlp="gelu", norm_eps=1e-5),
    published=Published(
        params=17e9, params_source=TURING,
        lecture=_lecture(78, 4256, 28, "17B", None, "256x V100"), tolerance=0.015),
    source=TURING,
    note=("17.2B with the assumed GPT-2 vocabulary: 1.0% above the rounded '17B' (any value in "
          "16.5-17.5B rounds to it). Vocabulary and context length are assumptions."),
    training=Training(chip="V100", chips=256, days=None, source=TURING),
)

GPT3 = "Brown et al. 2020, Language Models are Few-Shot Learners"
GPT3_175B = LMPreset(
    name="GPT-3 175B",
    # Table 2.1: 96 layers, d_model 12288, 96 heads of 128, context 2048; sec. 2.1: GPT-2
    # architecture (vocabulary 50,257) with alternating dense/locally banded sparse attention,
    # which changes FLOPs but not parameters (counted here as dense).
    config=TransformerConfig(
        kind="decoder", num_layers=96, d_model=12288, num_heads=96, d_ff=4 * 12288,
        vocab_size=50_257, max_len=2048, position="learned", mlp="gelu", norm_eps=1e-5),
    published=Published(
        params=175e9, params_source=f"{GPT3}, Table 2.1",
        lecture=_lecture(96, 12288, 96, "175B", "694 GB")),
    source=GPT3,
    training=Training(
        chip="V100", chips=None, days=None,
        source=f"{GPT3}, sec. 2.3 (V100 cluster; chip count and time not published)",
        phases=(Phase(300e9, 2048),), tokens_source="Table 2.2 / sec. 2.2: 300B tokens"),
)

GOPHER = "Rae et al. 2021, Scaling Language Models: Methods, Analysis & Insights from Training Gopher"
GOPHER_280B = LMPreset(
    name="Gopher 280B",
    # Table 1: 80 layers, 128 heads, key/value size 128, d_model 16,384; sec. 3: RMSNorm,
    # Transformer-XL relative positions, SentencePiece vocabulary 32,000, context 2048;
    # d_ff = 4 d_model. Whether embeddings are tied is not stated; tied assumed (0.5B, 0.2%).
    config=TransformerConfig(
        kind="decoder", num_layers=80, d_model=16384, num_heads=128, head_dim=128,
        d_ff=4 * 16384, vocab_size=32_000, max_len=2048, position="relative", norm="rmsnorm",
        mlp="gelu", use_bias=True),
    published=Published(
        params=280e9, params_source=f"{GOPHER}, Table 1",
        lecture=_lecture(80, 16384, 128, "280B", "10.55 TB", "4096x TPUv3", "38 days")),
    source=GOPHER,
    note=("The relative-position projection (d x d per layer, 21.5B in all) is what brings "
          "12 L d^2 = 257.7B up to 280B."),
    training=Training(
        chip="TPUv3", chips=4096, days=38.0, source="lecture table (4096 TPUv3, 38 days)",
        phases=(Phase(300e9, 2048),), tokens_source=f"{GOPHER}, sec. 3: 300B tokens"),
)

PALM = "Chowdhery et al. 2022, PaLM: Scaling Language Modeling with Pathways"
PALM_540B = LMPreset(
    name="PaLM 540B",
    # Table 1: 118 layers, d_model 18,432, 48 heads of 256, d_ff = 4 d_model; sec. 2: SwiGLU,
    # parallel blocks, multi-query attention (one key/value head), RoPE, shared input/output
    # embeddings, no biases in dense kernels or layer norms, SentencePiece vocabulary of 256k,
    # sequence length 2048.
    config=TransformerConfig(
        kind="decoder", num_layers=118, d_model=18432, num_heads=48, head_dim=256,
        num_kv_heads=1, d_ff=4 * 18432, vocab_size=256_000, max_len=2048, position="rotary",
        mlp="swiglu", parallel_block=True, use_bias=False, tie_embeddings=True),
    published=Published(
        params=540.35e9, params_source=f"{PALM}, Table 1 (540.35B)",
        lecture=_lecture(118, 18432, 48, "540B", None, "6144x TPUv4")),
    source=PALM,
    training=Training(
        chip="TPUv4", chips=6144, days=None,
        source=f"{PALM}, sec. 4 (6144 TPU v4 chips; total time not published)",
        phases=(Phase(780e9, 2048),), tokens_source=f"{PALM}, sec. 3: 780B tokens",
        published_mfu=0.462),
)

LANGUAGE_MODELS: tuple[LMPreset, ...] = (
    TRANSFORMER_BASE, TRANSFORMER_BIG, BERT_BASE, BERT_LARGE, XLNET_LARGE, ROBERTA_LARGE,
    GPT2_XL, MEGATRON_8B, TURING_NLG, GPT3_175B, GOPHER_280B, PALM_540B,
)


# ----------------------------------------------------------------------------- vision models

VIT = "Dosovitskiy et al. 2021, An Image is Worth 16x16 Words"
DEIT = "Touvron et al. 2021, DeiT"
ZHAI = "Zhai et al. 2022, Scaling Vision Transformers"

# size -> (published params, source, patch the published count refers to, tolerance, note)
_VIT_PUBLISHED: dict[str, tuple[float | None, str, int | None, float, str]] = {
    "Ti": (5e6, f"{DEIT}, Table 1", 16, 0.15,
           "DeiT's Table 1 truncates: DeiT-Ti has 5.7M parameters, printed as 5M."),
    "S": (22e6, f"{DEIT}, Table 1", 16, 0.01, ""),
    "M": (None, "big_vision vit.py (no published count)", None, 0.01, ""),
    "B": (86e6, f"{VIT}, Table 1", 16, 0.01, ""),
    "L": (307e6, f"{VIT}, Table 1", 16, 0.01, ""),
    "H": (632e6, f"{VIT}, Table 1", 14, 0.01, ""),
    "g": (1011e6, f"{ZHAI}, Table 2", 14, 0.01, ""),
    "G": (1843e6, f"{ZHAI}, Table 2", 14, 0.01, ""),
}
_VIT_LECTURE = {"B": _lecture(12, 768, 12, "86M"), "L": _lecture(24, 1024, 16, "307M"),
                "H": _lecture(32, 1280, 16, "632M")}


def _vit_presets() -> tuple[VisionPreset, ...]:
    rows = []
    for size, (params, src, patch_of_count, tol, note) in _VIT_PUBLISHED.items():
        for patch in (32, 16, 14):
            counted = patch == patch_of_count
            rows.append(VisionPreset(
                name=f"ViT-{size}/{patch}",
                model={"name": "vit", "variant": f"{size}/{patch}"},
                published=Published(
                    params=params if counted else None,
                    params_source=src if counted else f"none for /{patch} ({src} counts /{patch_of_count})",
                    lecture=_VIT_LECTURE.get(size, {}) if counted else {}, tolerance=tol),
                source=VIT if size in "BLH" else src,
                note=(note + " " if counted and note else "")
                + "224px, 1000 classes, class token, learned positions.",
            ))
    return tuple(rows)


HE = "He et al. 2016, Deep Residual Learning for Image Recognition"
TORCHVISION = "torchvision model table (the reference ImageNet implementation)"
# depth -> (published params from torchvision, He et al. Table 1 FLOPs = multiply-adds)
_RESNET_PUBLISHED = {18: (11_689_512, 1.8e9), 34: (21_797_672, 3.6e9), 50: (25_557_032, 3.8e9),
                     101: (44_549_160, 7.6e9), 152: (60_192_808, 11.3e9)}


def _resnet_presets() -> tuple[VisionPreset, ...]:
    return tuple(
        VisionPreset(
            name=f"ResNet-{depth}", model={"name": "resnet", "depth": depth},
            published=Published(params=params, params_source=TORCHVISION),
            source=HE, published_flops=2 * macs,
            note=("He et al. give no parameter counts; the exact counts are torchvision's. Their "
                  "'FLOPs' are multiply-adds of ResNet v1 (stride in the first 1x1 conv); this "
                  "codebase strides in the 3x3 conv (v1.5), which costs more for the bottleneck "
                  "depths." if depth >= 50 else
                  "He et al. give no parameter counts; the exact counts are torchvision's. Their "
                  "'FLOPs' are multiply-adds."))
        for depth, (params, macs) in _RESNET_PUBLISHED.items())


VISION_MODELS: tuple[VisionPreset, ...] = _vit_presets() + _resnet_presets()


def by_name(name: str) -> LMPreset | VisionPreset:
    """A preset by name, case-insensitively; ValueError lists the names."""
    for preset in LANGUAGE_MODELS + VISION_MODELS:
        if preset.name.lower() == name.lower():
            return preset
    names = [p.name for p in LANGUAGE_MODELS + VISION_MODELS]
    raise ValueError(f"unknown preset {name!r}; valid names: {names}")
