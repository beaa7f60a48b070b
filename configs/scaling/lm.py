"""Scaling laws of byte-level Transformer LMs, measured: one isoFLOP sweep, three analyses.

    vision-jax sweep --config=configs/scaling/lm.py:smoke --processes 2 --sweepdir=workdirs/sweeps/lm_smoke
    vision-jax sweep --config=configs/scaling/lm.py --processes 2 --sweepdir=workdirs/sweeps/lm

The runs (task 'lm', configs/lm.py: pre-norm GELU Transformers with rotary
positions on the Python stdlib's bytes, seq_len 64, batch 32 windows) are
isoFLOP profiles: at each compute budget C, several model sizes N (non-
embedding parameters, vision_jax.tasks.lm.SIZES: width and depth grow
together, 10k to 1.2M), each trained on D = C / (6N) tokens with its cosine
schedule matched to that length (warmup 5% of the steps, decay to 10%) and
Kaplan et al.'s learning rate for its size. The same runs serve

  1. Kaplan et al. (2020) L(N): a power law in N of the final eval loss of
     each size's longest-trained run;
  2. Hoffmann et al. (2022) approach 2: a parabola in log N per budget,
     N_opt ~ C^a and D_opt ~ C^b across budgets (published: a = 0.49,
     b = 0.51 for Chinchilla; a = 0.73 for Kaplan et al.);
  3. Hoffmann et al. approach 3: L(N, D) = E + A/N^alpha + B/D^beta over all
     runs, with vision_jax.scaling.fit's identifiability verdict.

vision_jax/scaling/lm_laws.py does the three (a 'custom' plots entry) and
writes <sweepdir>/plots/lm_kaplan.png, lm_isoflop.png, lm_chinchilla/ and
lm_laws.txt; fits.json holds the tables. `vision-jax fit --results
<sweepdir>/results.jsonl --form isoflop --params-col non_embedding_params
--budget-col lm.budget_flops` refits approach 2 from the store, whose
`examples_seen` are windows: tokens are examples_seen x 64.

C = 6ND with N non-embedding is Kaplan's and Chinchilla's accounting; for
models this small the logits (2 x 256 d per token) and the attention (4 x 64 d
per layer and token) are not negligible: the trainer's own count
(compute_flops in the store) is 1.1x (1.2M) to 2.0x (10k) of 6ND.

Arguments: smoke (3 budgets x 3 sizes, about 10 minutes on 2 busy cores).

Variants:
  full   budgets 2e10, 6e10, 2e11, 6e11, 2e12 FLOPs, 4-5 sizes each from 10k
         to 1.2M (24 runs, 1.7e13 FLOPs of training by the trainer's count):
         designed for about 45 minutes with --processes 2 on two idle cores
         (4.7 GFLOP/s per process measured on the 150k model), 90 on busy ones.
  smoke  budgets 2e10, 6e10, 2e11, three sizes each (9 runs).

Result: RESULT_PENDING
"""

import math

from ml_collections import ConfigDict

from vision_jax.config import parse_arg
from vision_jax.tasks import lm

SEQ_LEN = 64
BATCH = 8
# compute budget C (FLOPs, 6ND) -> model sizes (keys of lm.SIZES) trained at it
FULL = {2e10: ("5k", "10k", "20k", "40k"),
        6e10: ("5k", "10k", "20k", "40k"),
        2e11: ("10k", "20k", "40k", "80k"),
        6e11: ("10k", "20k", "40k", "80k", "150k"),
        2e12: ("20k", "40k", "80k", "150k", "300k"),
        6e12: ("40k", "80k", "150k", "300k", "600k", "1.2M")}
SMOKE = {2e10: ("5k", "10k", "20k"),
         6e10: ("10k", "20k", "40k"),
         2e11: ("10k", "20k", "40k")}


def non_embedding_params(size: str) -> int:
    d, layers, heads = lm.SIZES[size]
    cfg = lm.transformer.TransformerConfig(
        vocab_size=lm.VOCAB_SIZE, d_model=d, num_heads=heads, d_ff=4 * d, num_layers=layers,
        max_len=SEQ_LEN, position="rotary", tie_embeddings=False)
    return lm.transformer.param_counts(cfg)["non_embedding"]


def point(budget: float, size: str) -> dict:
    """The config keys of one run: its size, D = C / (6N) tokens in windows, its schedule."""
    n = non_embedding_params(size)
    examples = max(1, round(budget / (6 * n) / SEQ_LEN))
    steps = math.ceil(examples / BATCH)
    return {"lm.budget_flops": budget, **lm.model_settings(size), "total_examples": examples,
            "optimizer.learning_rate": round(lm.learning_rate(lm.SIZES[size][0]), 6),
            "schedule.warmup_steps": max(1, round(0.05 * steps))}


def get_config(arg=None):
    a = parse_arg(arg, smoke=False, runlocal=False)  # runlocal: the smoke variant
    a.smoke = a.smoke or a.runlocal
    budgets = SMOKE if a.smoke else FULL
    c = ConfigDict()
    c.base = f"configs/lm.py:seq_len={SEQ_LEN}"
    c.overrides = [
        f"batch_size={BATCH}", "lm.eval_windows=" + ("512" if a.smoke else "2048"),
        "log_every_steps=25", "eval_every_steps=0", "checkpoint.every_steps=1000",
        "progress_bar=False",
    ]
    c.axes = (("run", [point(b, s) for b, sizes in budgets.items() for s in sizes]),)
    c.mode = "grid"
    c.plots = [{"kind": "custom", "function": "vision_jax.scaling.lm_laws:analyse",
                "seq_len": SEQ_LEN, "bootstrap": 200},
               {"kind": "curves", "hue": "lm.budget_flops", "name": "curves"}]
    return c
