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
models this codebase trains. The CNN rows (`CNN_MODELS`: LeNet-5 to RegNet) carry
the published multiply-accumulates per image as well: torchvision's model table
calls them "GFLOPS" but counts one multiply-add as one operation, as the CNN
papers do; `published_flops` converts them to this codebase's 2 x MACs.
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
    channels: int = 3
    # Forward multiply-accumulates per image at `image_size`, as published (CNN papers and
    # torchvision's "GFLOPS" count one multiply-add as one operation), and whose they are.
    published_macs: float | None = None
    flops_source: str = ""
    flops_tolerance: float = 0.05

    @property
    def published_flops(self) -> float | None:
        """The published figure in this codebase's convention: 2 x MACs."""
        return None if self.published_macs is None else 2.0 * self.published_macs


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

LLAMA3 = "Llama Team, AI @ Meta 2024, The Llama 3 Herd of Models"
_LLAMA3 = dict(
    # Table 3: SwiGLU, grouped-query attention with 8 key/value heads, RoPE (theta 500,000);
    # sec. 3: 8K context in the main pre-training stage. The released checkpoints' config.json
    # (and Meta's reference model.py): vocabulary 128,256 (Table 3's "128,000" plus 256 reserved
    # special tokens), RMSNorm (eps 1e-5) before each sublayer and at the end, no biases,
    # separate input embedding and output matrix.
    kind="decoder", num_kv_heads=8, vocab_size=128_256, max_len=8192, position="rotary",
    rotary_base=500_000.0, mlp="swiglu", norm="rmsnorm", norm_eps=1e-5, use_bias=False,
    tie_embeddings=False,
)
# The untied embeddings are counted twice (input table and output matrix), as the released
# checkpoints store both: 2 x 128,256 x d_model is 1.05B of the 8B model's 8.03B.
_LLAMA3_NOTE = ("Exact: the released checkpoint's count follows from Table 3 with untied "
                "input/output embeddings (128,256 x d_model each), one RMSNorm weight vector "
                "before each sublayer and one at the end, no biases, and no position parameters "
                "(RoPE).")
_LLAMA3_TOKENS = f"{LLAMA3}, sec. 1: pre-trained on 'about 15T multilingual tokens'"

LLAMA3_8B = LMPreset(
    name="Llama 3 8B",
    # Table 3: 32 layers, model dimension 4,096, FFN 14,336, 32 heads of 128, 8 KV heads.
    config=TransformerConfig(num_layers=32, d_model=4096, d_ff=14_336, num_heads=32, **_LLAMA3),
    published=Published(
        params=8_030_261_248,
        params_source="released checkpoint (Meta-Llama-3-8B / Llama-3.1-8B: 8,030,261,248)"),
    source=LLAMA3,
    note=_LLAMA3_NOTE,
    training=Training(
        chip="H100", chips=None, days=None,
        source=f"{LLAMA3} (H100s; the 8B run's chip count and wall-clock time are not published)",
        phases=(Phase(15e12, 8192),), tokens_source=_LLAMA3_TOKENS),
)

LLAMA3_70B = LMPreset(
    name="Llama 3 70B",
    # Table 3: 80 layers, model dimension 8,192, FFN 28,672, 64 heads of 128, 8 KV heads.
    config=TransformerConfig(num_layers=80, d_model=8192, d_ff=28_672, num_heads=64, **_LLAMA3),
    published=Published(
        params=70_553_706_496,
        params_source="released checkpoint (Meta-Llama-3-70B / Llama-3.1-70B: 70,553,706,496)"),
    source=LLAMA3,
    note=_LLAMA3_NOTE,
    training=Training(
        chip="H100", chips=None, days=None,
        source=f"{LLAMA3} (H100s; the 70B run's chip count and wall-clock time are not published)",
        phases=(Phase(15e12, 8192),), tokens_source=_LLAMA3_TOKENS),
)

LLAMA3_405B = LMPreset(
    name="Llama 3 405B",
    # Table 3: 126 layers, model dimension 16,384, FFN 53,248, 128 heads of 128, 8 KV heads.
    config=TransformerConfig(num_layers=126, d_model=16_384, d_ff=53_248, num_heads=128,
                             **_LLAMA3),
    published=Published(
        params=405_853_388_800,
        params_source="released checkpoint (Llama-3.1-405B: 405,853,388,800)"),
    source=LLAMA3,
    note=_LLAMA3_NOTE + " Released as Llama 3.1 405B; the paper calls the family Llama 3.",
    training=Training(
        chip="H100", chips=16_384, days=None,
        source=(f"{LLAMA3}, sec. 3.3 (up to 16K H100 GPUs; Table 4: 38-43% BF16 MFU; wall-clock "
                "time not published)"),
        # The long-context stage that follows (8K -> 128K, sec. 3.4.2) is not included.
        phases=(Phase(15.6e12, 8192),),
        tokens_source=f"{LLAMA3}, sec. 3: 15.6T tokens at 8K context (long-context stage not "
                      "counted)"),
)

LANGUAGE_MODELS: tuple[LMPreset, ...] = (
    TRANSFORMER_BASE, TRANSFORMER_BIG, BERT_BASE, BERT_LARGE, XLNET_LARGE, ROBERTA_LARGE,
    GPT2_XL, MEGATRON_8B, TURING_NLG, GPT3_175B, GOPHER_280B, PALM_540B,
    LLAMA3_8B, LLAMA3_70B, LLAMA3_405B,
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
# The "Params" and "GFLOPS" columns of the documentation's table of classification weights,
# i.e. the `num_params` and `_ops` metadata of the IMAGENET1K_V1 weights in torchvision.models.
TORCHVISION = "torchvision model table (the reference ImageNet implementation; Params, GFLOPS)"
# He et al. 2016, Table 1: "FLOPs" (multiply-adds) of ResNet v1 at 224px.
HE_TABLE1_MACS = {18: 1.8e9, 34: 3.6e9, 50: 3.8e9, 101: 7.6e9, 152: 11.3e9}
# depth -> (params, GMACs) of torchvision's resnet{depth}.
_RESNET_PUBLISHED = {18: (11_689_512, 1.814), 34: (21_797_672, 3.664), 50: (25_557_032, 4.089),
                     101: (44_549_160, 7.801), 152: (60_192_808, 11.514)}


def _cnn(name: str, model: Mapping[str, Any], params: float, gmacs: float, source: str, *,
         params_source: str = TORCHVISION, flops_source: str = TORCHVISION,
         tolerance: float = 0.01, flops_tolerance: float = 0.01, **fields: Any) -> VisionPreset:
    """A CNN row: torchvision's exact count and GFLOPS unless the sources say otherwise.

    torchvision prints GFLOPS to three decimals, so 1% is its rounding for the
    smallest models; figures from papers are rounded harder and get 5%."""
    return VisionPreset(name=name, model=model,
                        published=Published(params=params, params_source=params_source,
                                            tolerance=tolerance),
                        source=source, published_macs=gmacs * 1e9, flops_source=flops_source,
                        flops_tolerance=flops_tolerance, **fields)


def _resnet_presets() -> tuple[VisionPreset, ...]:
    def note(depth: int) -> str:
        paper = (f"He et al. give no parameter counts; their Table 1 gives "
                 f"{HE_TABLE1_MACS[depth] / 1e9:.1f}G multiply-adds")
        if depth < 50:  # basic blocks are the same in v1 and v1.5
            return paper + ", which agree to rounding."
        return (paper + " for ResNet v1, which strides in the first 1x1 conv of a bottleneck; "
                "torchvision and this codebase stride in the 3x3 conv (v1.5), which costs more.")

    return tuple(_cnn(f"ResNet-{depth}", {"name": "resnet", "depth": depth}, params, gmacs, HE,
                      note=note(depth))
                 for depth, (params, gmacs) in _RESNET_PUBLISHED.items())


# ----------------------------------------------------------------------------- CNN zoo

LECUN = "LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition"
KRIZHEVSKY = "Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks"
SIMONYAN = "Simonyan & Zisserman 2015, Very Deep Convolutional Networks"
SZEGEDY = "Szegedy et al. 2015, Going Deeper with Convolutions"
XIE = "Xie et al. 2017, Aggregated Residual Transformations for Deep Neural Networks"
HOWARD_V1 = "Howard et al. 2017, MobileNets"
SANDLER = "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks"
HOWARD_V3 = "Howard et al. 2019, Searching for MobileNetV3"
TAN = "Tan & Le 2019, EfficientNet: Rethinking Model Scaling for CNNs"
RADOSAVOVIC = "Radosavovic et al. 2020, Designing Network Design Spaces"


# LeCun et al. 1998, Sec. II-B, layer by layer: trainable parameters (C1 156, S2 12, C3 1,516,
# S4 32, C5 48,120, F6 10,164; the RBF output units are fixed) and connections (C1 122,304,
# S2 5,880, C3 151,600, S4 2,000, C5 48,120, F6 10,164, output 84 x 10 = 840).
_LENET5_PARAMS = 156 + 12 + 1_516 + 32 + 48_120 + 10_164
_LENET5_CONNECTIONS = 122_304 + 5_880 + 151_600 + 2_000 + 48_120 + 10_164 + 840

# torchvision names -> (params, GMACs); Simonyan & Zisserman Table 2 rounds these to
# 133M (A), 133M (B), 138M (D), 144M (E) and gives no FLOPs.
_VGG_PUBLISHED = {(11, False): (132_863_336, 7.609), (13, False): (133_047_848, 11.308),
                  (16, False): (138_357_544, 15.47), (19, False): (143_667_240, 19.632),
                  (11, True): (132_868_840, 7.609), (13, True): (133_053_736, 11.308),
                  (16, True): (138_365_992, 15.47), (19, True): (143_678_248, 19.632)}
# vision_jax.models.resnet.RESNEXTS name -> (params, GMACs) of torchvision's resnext{name}.
_RESNEXT_PUBLISHED = {"50_32x4d": (25_028_904, 4.23), "101_32x8d": (88_791_336, 16.414),
                      "101_64x4d": (83_455_272, 15.46)}
# EfficientNet variant -> (torchvision params, torchvision GMACs, Tan & Le Table 2 "Params" and
# "FLOPs" (multiply-adds) as printed). torchvision evaluates B2 at 288px, the paper and we at 260.
_EFFICIENTNET_PUBLISHED = {
    "B0": (5_288_548, 0.386, "5.3M", "0.39B"), "B1": (7_794_184, 0.687, "7.8M", "0.70B"),
    "B2": (9_109_994, 1.088, "9.2M", "1.0B"), "B3": (12_233_232, 1.827, "12M", "1.8B"),
    "B4": (19_341_616, 4.394, "19M", "4.2B"), "B5": (30_389_784, 10.266, "30M", "9.9B"),
    "B6": (43_040_704, 19.068, "43M", "19B"), "B7": (66_347_960, 37.746, "66M", "37B"),
}
# vision_jax.models.regnet.VARIANTS name -> (params, GMACs) of torchvision's regnet_{x,y}_*.
_REGNET_PUBLISHED = {"X-400MF": (5_495_976, 0.414), "X-800MF": (7_259_656, 0.8),
                     "X-1.6GF": (9_190_136, 1.603), "Y-400MF": (4_344_144, 0.402),
                     "Y-800MF": (6_432_512, 0.834), "Y-1.6GF": (11_202_430, 1.612)}


def _efficientnet_presets() -> tuple[VisionPreset, ...]:
    from vision_jax.models.efficientnet import VARIANTS
    rows = []
    for variant, (params, gmacs, paper_params, paper_flops) in _EFFICIENTNET_PUBLISHED.items():
        paper = f"Tan & Le Table 2: {paper_params} parameters, {paper_flops} FLOPs (multiply-adds)."
        if variant == "B2":
            # torchvision's 1.088 GFLOPS is at its 288px crop; the paper's 260px figure compares.
            gmacs, flops_source, tolerance = 1.0, f"{TAN}, Table 2 (at 260px)", 0.05
            note = (f"{paper} torchvision evaluates B2 at 288px (1.088 GFLOPS, which we also "
                    "count there); at the paper's 260px its rounded 1.0B is the reference.")
        else:
            flops_source, tolerance = TORCHVISION, 0.01
            note = paper + " torchvision's exact figures are at the paper's resolution."
        rows.append(_cnn(f"EfficientNet-{variant}", {"name": "efficientnet", "variant": variant},
                         params, gmacs, TAN, flops_source=flops_source,
                         flops_tolerance=tolerance, image_size=VARIANTS[variant][2], note=note))
    return tuple(rows)


def _cnn_presets() -> tuple[VisionPreset, ...]:
    from vision_jax.models.regnet import VARIANTS as REGNETS
    from vision_jax.models.resnet import RESNEXTS
    lenet = _cnn(
        "LeNet-5", {"name": "lenet"}, _LENET5_PARAMS, _LENET5_CONNECTIONS / 1e9, LECUN,
        params_source=f"{LECUN}, Sec. II-B (60,000 trainable parameters)",
        flops_source=f"{LECUN}, Sec. II-B (340,908 connections, layer counts summed)",
        tolerance=0.03, flops_tolerance=0.25, image_size=32, channels=1, num_classes=10,
        note=("The paper's LeNet-5 has 60,000 trainable parameters and 340,908 connections; "
              "this one is the usual modern rebuild (vision_jax/models/lenet.py): C3 sees all "
              "six C1 maps (2,416 parameters and 240,000 multiply-adds instead of the sparse "
              "Table I's 1,516 and 151,600), the subsampling layers have no trainable "
              "coefficient (-44) and the output is a dense layer (+850) instead of fixed RBF "
              "units: 61,706 parameters (+2.8%) and 416,520 multiply-adds (+22%; the paper's "
              "connections also count biases and the subsampling)."))
    alexnet = _cnn("AlexNet", {"name": "alexnet"}, 61_100_840, 0.714, KRIZHEVSKY,
                   note=("torchvision's one-tower AlexNet (Krizhevsky 2014); the two-GPU "
                         "network of Krizhevsky et al. 2012 has '60 million parameters' and "
                         "different widths."))
    vggs = tuple(
        _cnn(f"VGG-{depth}{'_bn' if bn else ''}", {"name": "vgg", "depth": depth, "batch_norm": bn},
             params, gmacs, SIMONYAN,
             note=("Simonyan & Zisserman's Table 2 rounds the counts (133M, 133M, 138M, 144M) "
                   "and gives no FLOPs; _bn adds batch norm after every convolution."))
        for (depth, bn), (params, gmacs) in _VGG_PUBLISHED.items())
    googlenet = _cnn("GoogLeNet", {"name": "googlenet"}, 6_624_904, 1.498, SZEGEDY,
                     note=("Counted without the two auxiliary classifiers (13,004,888 with "
                           "them); torchvision adds batch norm after every convolution. Szegedy "
                           "et al. give ~6.8M parameters and 1.5G multiply-adds (Sec. 5)."))
    resnexts = tuple(
        _cnn(f"ResNeXt-{name.replace('_', ' ')}",
             {"name": "resnet", "depth": depth, "groups": groups, "width_per_group": width},
             *_RESNEXT_PUBLISHED[name], XIE,
             note=("Xie et al. name a ResNeXt by depth, cardinality and the width of each group "
                   "(32x4d); their Table 1 gives ResNeXt-50 (32x4d) 25.0M parameters and 4.2G "
                   "FLOPs (multiply-adds)."))
        for name, (depth, groups, width) in RESNEXTS.items())
    mobilenets = (
        _cnn("MobileNet v1 1.0", {"name": "mobilenet_v1"}, 4.2e6, 0.569, HOWARD_V1,
             params_source=f"{HOWARD_V1}, Table 8 (4.2M)",
             flops_source=f"{HOWARD_V1}, Table 8 (569M mult-adds)", flops_tolerance=0.05,
             note=("Not in torchvision. Counted like torchvision's other MobileNets (batch norm "
                   "after every convolution, a classifier bias): 4,231,976 parameters, 0.8% "
                   "above the paper's rounded 4.2M.")),
        _cnn("MobileNet v2 1.0", {"name": "mobilenet_v2"}, 3_504_872, 0.301, SANDLER,
             note="Sandler et al. Table 4 gives 3.4M parameters and 300M multiply-adds."),
        _cnn("MobileNet v3 large", {"name": "mobilenet_v3", "variant": "large"}, 5_483_032,
             0.217, HOWARD_V3,
             note="Howard et al. 2019 Table 3: 5.4M parameters, 219M multiply-adds."),
        _cnn("MobileNet v3 small", {"name": "mobilenet_v3", "variant": "small"}, 2_542_856,
             0.057, HOWARD_V3,
             note=("Howard et al. 2019 Table 3: 2.5M parameters, 56M multiply-adds; "
                   "torchvision's 0.057 GFLOPS is rounded to three decimals (we count 56.5M).")),
    )
    regnets = tuple(
        _cnn(f"RegNet{variant}", {"name": "regnet", "variant": variant},
             *_REGNET_PUBLISHED[variant], RADOSAVOVIC,
             note=("The model's name is its FLOPs (multiply-adds) regime, e.g. 400MF; the design "
                   "parameters are those of Appendix C / pycls."))
        for variant in REGNETS)
    return (lenet, alexnet, *vggs, googlenet, *resnexts, *mobilenets,
            *_efficientnet_presets(), *regnets)


VIT_MODELS: tuple[VisionPreset, ...] = _vit_presets()
# Every CNN of the zoo at its published size(s); the ResNets are the rows above.
CNN_MODELS: tuple[VisionPreset, ...] = _resnet_presets() + _cnn_presets()
VISION_MODELS: tuple[VisionPreset, ...] = VIT_MODELS + CNN_MODELS


def by_name(name: str) -> LMPreset | VisionPreset:
    """A preset by name, case-insensitively; ValueError lists the names."""
    for preset in LANGUAGE_MODELS + VISION_MODELS:
        if preset.name.lower() == name.lower():
            return preset
    names = [p.name for p in LANGUAGE_MODELS + VISION_MODELS]
    raise ValueError(f"unknown preset {name!r}; valid names: {names}")
