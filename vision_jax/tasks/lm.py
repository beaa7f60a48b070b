"""Causal language modelling on bytes: the Transformer of the scaling tables, trained.

A decoder-only `Transformer` (vision_jax/models/transformer.py, kind='decoder')
reads a window of bytes and predicts each next byte; the loss is the mean
cross-entropy in nats per predicted byte, and eval also reports it in bits
per byte (nats / ln 2) and the next-byte accuracy. Tokens are the 256 byte
values, nothing else: documents are joined by one separator byte (0x1C) in
the corpus itself (vision_jax/data/corpus.py).

Units. One *example* is one window of `lm.seq_len + 1` bytes: `seq_len`
predictions. The splits' sizes (`dataset_info`) are counted in
non-overlapping windows, (bytes - 1) // seq_len, so `total_examples`,
`total_epochs` and `total_steps` keep their meaning: tokens seen =
examples seen x seq_len, and one epoch is as many windows as the training
split holds (drawn at random offsets, so with replacement).

FLOPs. `flops_per_example` is analytic, not XLA's: `transformer.flops_per_token`
at context seq_len (every matmul, attention scores over the full window as
the dense causal product computes them, the logits; 2 FLOPs per MAC) times
seq_len, train = 3 x forward; tests/test_scaling_tables.py checks that count
against XLA's. A scaling study's compute axis is Kaplan et al.'s C = 6 N D
with N the non-embedding parameters and D the tokens: configs/scaling/lm.py
sizes its runs with it; the trainer's compute_flops column is the fuller
count above (for byte-level models of 10k parameters the logits and the
attention are a large share of it).

Config (`config.lm`):

  corpus        'stdlib' (the Python standard library's source, built
                offline), a TFDS text dataset prepared in array_record format
                ('tiny_shakespeare', 'lm1b', ...), or a directory holding a
                saved corpus (train.npy, validation.npy, meta.json)
  data_dir      TFDS data directory ('' = the default)
  text_key      the TFDS text feature
  max_examples  TFDS examples read per split (-1 = all)
  cache_dir     where corpora are cached ('' = corpora/ beside the TFDS dir)
  seq_len       the context: predictions per window
  eval_windows  validation windows evaluated, spread over the split (-1 = all)
  budget_flops  a label, not a setting: the compute budget C a sweep sized
                this run for (the budget is total_examples); isoFLOP analysis
                groups runs by it

`config.model` holds `name='transformer'` and TransformerConfig's fields;
the task sets vocab_size=256 and kind='decoder', and max_len defaults to
seq_len.

Sampling: `task.sample_text(params, variables, rng, prompt, max_new,
temperature, top_k)` draws bytes with one jitted scan over a fixed buffer
(no recompilation per token; the model rereads its last seq_len bytes at each
step: no KV cache, which tiny models do not need). From the command line:

    python -m vision_jax.tasks.lm sample --workdir=DIR --prompt "def " \\
        --temperature 0.8 --top-k 40 --max-new 400
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vision_jax.data import corpus as corpus_lib
from vision_jax.models import transformer
from vision_jax.tasks.base import Task

VOCAB_SIZE = 256
SPLITS = ("train", "validation")

# Model sizes of the CPU scaling study (configs/scaling/lm.py, configs/lm.py):
# name -> (d_model, num_layers, num_heads), d_ff = 4 d_model, head_dim 6 to 16.
# The name is the non-embedding parameter count (Kaplan et al. 2020, sec. 2.1;
# `non_embedding_params`), rounded; width and depth both grow, depth slowly.
SIZES = {
    "5k": (12, 3, 2),
    "10k": (16, 3, 2),
    "20k": (24, 3, 3),
    "40k": (32, 3, 2),
    "80k": (48, 3, 3),
    "150k": (64, 3, 4),
    "300k": (80, 4, 5),
    "600k": (112, 4, 7),
    "1.2M": (128, 6, 8),
}


def model_settings(size: str) -> dict:
    """The `config.model` keys of one entry of SIZES."""
    if size not in SIZES:
        raise ValueError(f"LM size {size!r} is not one of {list(SIZES)}")
    d, layers, heads = SIZES[size]
    return {"model.d_model": d, "model.num_layers": layers, "model.num_heads": heads,
            "model.d_ff": 4 * d}


def learning_rate(d_model: int) -> float:
    """AdamW's peak rate for width d_model at batch 8 x 64 bytes: 0.02, halved with each
    doubling of the width above 32 (the 1/width of muP's hidden Adam rates, Yang et al.
    2022). Tuned on the stdlib corpus by factors of 2 (configs/scaling/lm.py): best of
    {1e-2, 2e-2, 4e-2} at d=32, of {8e-3, 1.3e-2, 2e-2} at d=48 and of {5e-3, 1e-2, 2e-2}
    at d=64. Kaplan et al.'s LR(N) = 0.003239 - 0.0001395 ln N (eq. D.1), 10x lower
    here, left these models 0.2-0.3 nats behind at equal tokens."""
    return 0.02 * min(1.0, 32.0 / d_model)


# ----------------------------------------------------------------------------- corpora

@functools.lru_cache(maxsize=4)
def _load(corpus: str, data_dir: str, text_key: str, max_examples: int,
          cache_dir: str) -> corpus_lib.Corpus:
    cache_dir = cache_dir or None
    if os.path.isfile(os.path.join(corpus, "meta.json")):
        return corpus_lib.load_corpus(corpus)
    if corpus == "stdlib":
        return corpus_lib.build_corpus(cache_dir)
    return corpus_lib.tfds_corpus(corpus, data_dir=data_dir or None, text_key=text_key,
                                  max_examples=None if max_examples < 0 else max_examples,
                                  cache_dir=cache_dir)


def load_corpus(config) -> corpus_lib.Corpus:
    """The corpus `config.lm` names (built or read once per process)."""
    lm = config.lm
    return _load(str(lm.corpus), str(lm.data_dir or ""), str(lm.text_key),
                 int(lm.max_examples), str(lm.cache_dir or ""))


def split_tokens(corpus: corpus_lib.Corpus, split: str) -> np.ndarray:
    if split not in SPLITS:
        raise ValueError(f"LM split {split!r} is not one of {list(SPLITS)} (set "
                         "config.data.train_split / eval_split to one of them)")
    return getattr(corpus, split)


def _eval_limit(config) -> int | None:
    n = int(config.lm.eval_windows)
    return None if n < 0 else n


class TrainWindows:
    """Endless process-local training batches: int32 'tokens' [B / processes, seq_len + 1].

    Batch k is `corpus.batch_at(tokens, k, ...)`, a pure function of the
    corpus, the seed and k; the state is {'step': k, 'corpus': sha256 prefix},
    so resuming is exact and a run resumed on different bytes stops.
    """

    def __init__(self, tokens, *, global_batch_size, seq_len, seed, process_index,
                 process_count, corpus_id: str):
        self.tokens, self.seq_len, self.seed = tokens, int(seq_len), int(seed)
        self.global_batch_size = int(global_batch_size)
        self.process_index, self.process_count = int(process_index), int(process_count)
        self.corpus_id = corpus_id
        self.step = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = corpus_lib.batch_at(self.tokens, self.step, self.global_batch_size,
                                    self.seq_len, self.seed, process_index=self.process_index,
                                    process_count=self.process_count)
        self.step += 1
        return {"tokens": batch}

    def get_state(self) -> dict:
        return {"step": self.step, "corpus": self.corpus_id}

    def set_state(self, state) -> None:
        if state.get("corpus") != self.corpus_id:
            raise ValueError(f"the checkpoint's data iterator read corpus {state.get('corpus')!r}, "
                             f"this run's corpus is {self.corpus_id!r}: resuming on other bytes "
                             "would not continue the same run")
        self.step = int(state["step"])


# ----------------------------------------------------------------------------- the task

class LanguageModel(Task):
    """Next-byte prediction with a decoder-only Transformer; loss in nats per byte."""

    score = "bits_per_byte"

    def __init__(self, config, info, **dtypes):
        super().__init__(config, info, **dtypes)
        self.seq_len = int(config.lm.seq_len)
        if self.seq_len < 1:
            raise ValueError(f"config.lm.seq_len={self.seq_len} must be positive")
        self.cfg = model_config(config, **dtypes)
        self.model = transformer.Transformer(self.cfg)
        # One compiled sampler per task (and per buffer length, max_new, top_k).
        self._generate = jax.jit(self._generate_fn, static_argnames=("max_new", "top_k"))

    # -- data ------------------------------------------------------------------
    @classmethod
    def prepare_data(cls, config) -> None:
        """Builds (or reads) the corpus once, writing its cached copy."""
        load_corpus(config)

    @classmethod
    def dataset_info(cls, config):
        from vision_jax.data import DatasetInfo
        corpus = load_corpus(config)
        seq_len = int(config.lm.seq_len)
        sizes = {}
        for split in SPLITS:
            n = (len(split_tokens(corpus, split)) - 1) // seq_len
            limit = _eval_limit(config) if split == "validation" else None
            sizes[split] = n if limit is None else min(n, limit)
        # image_shape and num_classes mean nothing here; kept so generic code can read them.
        return DatasetInfo(name=str(corpus.meta.get("name", config.lm.corpus)),
                           num_classes=VOCAB_SIZE, image_shape=(0, 0, 0), split_sizes=sizes)

    def train_iterator(self, *, global_batch_size, seed, process_index, process_count):
        corpus = load_corpus(self.config)
        return TrainWindows(split_tokens(corpus, self.config.data.train_split),
                            global_batch_size=global_batch_size, seq_len=self.seq_len,
                            seed=seed, process_index=process_index, process_count=process_count,
                            corpus_id=str(corpus.meta["sha256"])[:16])

    def eval_batches(self, split, *, global_batch_size, process_index, process_count):
        """Non-overlapping windows of `split` (at most lm.eval_windows, spread evenly),
        padded with zero windows (mask 0) to whole global batches; this process's
        rows of each global batch."""
        if global_batch_size % process_count:
            raise ValueError(f"global_batch_size={global_batch_size} is not divisible by "
                             f"process_count={process_count}")
        tokens = split_tokens(load_corpus(self.config), split)
        windows = corpus_lib.eval_windows(tokens, self.seq_len, _eval_limit(self.config))
        n = len(windows)
        padded = -(-n // global_batch_size) * global_batch_size
        windows = np.concatenate([windows, np.zeros((padded - n, self.seq_len + 1), np.int32)])
        mask = (np.arange(padded) < n).astype(np.float32)
        local = global_batch_size // process_count
        out = []
        for start in range(0, padded, global_batch_size):
            rows = slice(start + process_index * local, start + (process_index + 1) * local)
            out.append({"tokens": windows[rows], "mask": mask[rows]})
        return out

    def example_batch(self, batch_size: int = 1) -> dict:
        return {"tokens": jnp.zeros((batch_size, self.seq_len + 1), jnp.int32)}

    def synthetic_batch(self, batch_size: int, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        return {"tokens": rng.integers(0, VOCAB_SIZE, (batch_size, self.seq_len + 1))
                .astype(np.int32)}

    # -- model -----------------------------------------------------------------
    def init(self, rng, batch):
        variables = self.model.init(rng, batch["tokens"][:, :-1])
        return variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def logits(self, params, variables, inputs):
        """float32 logits [B, T, 256] for int32 inputs [B, T]."""
        out = self.model.apply({"params": params, **variables}, inputs)
        return out["logits"].astype(jnp.float32)

    def token_losses(self, params, variables, tokens):
        """(nats [B, T], correct [B, T]) of predicting tokens[:, 1:] from tokens[:, :-1]."""
        logits = self.logits(params, variables, tokens[:, :-1])
        targets = tokens[:, 1:]
        nats = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
        return nats, (jnp.argmax(logits, -1) == targets).astype(jnp.float32)

    def loss(self, params, variables, batch, rng, group=None):
        nats, correct = self.token_losses(params, variables, batch["tokens"])
        loss = nats.mean()
        return loss, {"bits_per_byte": loss / math.log(2), "accuracy": correct.mean()}, variables

    def eval_step(self, params, variables, batch, rng):
        nats, correct = self.token_losses(params, variables, batch["tokens"])
        mask = batch["mask"]
        per_window = nats.mean(-1)  # every window has seq_len targets: mean of means = mean
        return {"loss_sum": (per_window * mask).sum(),
                "bits_per_byte_sum": (per_window * mask).sum() / math.log(2),
                "accuracy_sum": (correct.mean(-1) * mask).sum(), "count": mask.sum()}

    def eval_reduce(self, totals):
        out = super().eval_reduce(totals)
        out["tokens"] = out["examples"] * self.seq_len
        return out

    # -- costs -----------------------------------------------------------------
    def flops_per_example(self, params, variables) -> dict:
        per_token = transformer.flops_per_token(self.cfg, self.seq_len)
        forward = per_token["forward"] * self.seq_len
        return {"forward": forward, "train": 3.0 * forward}

    def param_counts(self) -> dict:
        return transformer.param_counts(self.cfg)

    # -- sampling --------------------------------------------------------------
    def _generate_fn(self, params, variables, rng, buffer, prompt_len, temperature, *,
                  max_new: int, top_k: int):
        """Writes max_new bytes into `buffer` [num, L] from position prompt_len on."""
        ctx, total = self.cfg.max_len, buffer.shape[1]

        def step(buf, i):
            pos = prompt_len + i
            start = jnp.clip(pos - ctx, 0, total - ctx)
            window = jax.lax.dynamic_slice_in_dim(buf, start, ctx, axis=1)
            logits = self.logits(params, variables, window)
            last = jax.lax.dynamic_index_in_dim(logits, pos - 1 - start, axis=1, keepdims=False)
            if top_k:
                kth = jax.lax.top_k(last, top_k)[0][:, -1:]
                last = jnp.where(last < kth, -jnp.inf, last)
            greedy = jnp.argmax(last, -1)
            drawn = jax.random.categorical(jax.random.fold_in(rng, i),
                                           last / jnp.maximum(temperature, 1e-6), axis=-1)
            token = jnp.where(temperature > 0, drawn, greedy).astype(buf.dtype)
            return jax.lax.dynamic_update_slice_in_dim(buf, token[:, None], pos, axis=1), None

        buffer, _ = jax.lax.scan(step, buffer, jnp.arange(max_new))
        return buffer

    def sample_text(self, params, variables, rng, prompt: bytes = b"", max_new: int = 256,
                    temperature: float = 1.0, top_k: int = 0, *, num: int = 1):
        """`num` continuations of `prompt` (bytes), each prompt + max_new bytes.

        temperature 0 (or top_k 1) is greedy decoding. An empty prompt starts
        at a document boundary (the separator byte, which is not returned).
        Returns bytes for num=1, else a list of bytes.
        """
        if max_new < 1:
            raise ValueError(f"max_new={max_new} must be positive")
        if not 0 <= top_k <= VOCAB_SIZE:
            raise ValueError(f"top_k={top_k} must be in [0, {VOCAB_SIZE}] (0: no top-k)")
        lead = b"" if prompt else bytes([corpus_lib.SEPARATOR])
        start = np.frombuffer(lead + bytes(prompt), np.uint8).astype(np.int32)
        ctx = self.cfg.max_len
        # The buffer's length is rounded up to whole contexts, so prompts of
        # similar length share one compiled program.
        length = max(ctx, -(-(len(start) + max_new) // ctx) * ctx)
        buffer = np.zeros((num, length), np.int32)
        buffer[:, :len(start)] = start
        out = self._generate(params, variables, rng, jnp.asarray(buffer),
                             jnp.int32(len(start)), jnp.float32(temperature),
                             max_new=int(max_new), top_k=int(top_k))
        out = np.asarray(jax.device_get(out))[:, len(lead):len(start) + max_new]
        texts = [row.astype(np.uint8).tobytes() for row in out]
        return texts[0] if num == 1 else texts


def model_config(config, *, dtype=jnp.float32, param_dtype=jnp.float32
                 ) -> transformer.TransformerConfig:
    """The TransformerConfig of `config.model` for byte-level causal LM."""
    options = dict(config.model.items())
    name = options.pop("name", None)
    if name != "transformer":
        raise ValueError(f"task 'lm' needs config.model.name='transformer', got {name!r}")
    for key, value in (("vocab_size", VOCAB_SIZE), ("kind", "decoder")):
        if options.setdefault(key, value) != value:
            raise ValueError(f"task 'lm' is byte-level and causal: config.model.{key} must be "
                             f"{value!r}, got {options[key]!r}")
    seq_len = int(config.lm.seq_len)
    options.setdefault("max_len", seq_len)
    if options["max_len"] < seq_len:
        raise ValueError(f"config.model.max_len={options['max_len']} is shorter than "
                         f"config.lm.seq_len={seq_len}")
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return transformer.from_mapping({**options, "dtype": dtype, "param_dtype": param_dtype})


def lm_section(**overrides) -> dict:
    """The defaults of `config.lm` (see the module docstring)."""
    return {"corpus": "stdlib", "data_dir": "", "text_key": corpus_lib.TEXT_KEY,
            "max_examples": -1, "cache_dir": "", "seq_len": 64, "eval_windows": -1,
            "budget_flops": -1.0, **overrides}


# ----------------------------------------------------------------------------- command line

def _params_of(config, state):
    use_ema = bool(config.ema.decay and config.ema.evaluate and state.ema)
    return state.ema if use_ema else state.params


def main(argv: list[str] | None = None) -> int:
    """`python -m vision_jax.tasks.lm sample --workdir=DIR [--prompt P] ...`."""
    parser = argparse.ArgumentParser(prog="python -m vision_jax.tasks.lm",
                                     description="Text from a trained byte-level LM run.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="continue a prompt with a run's newest checkpoint")
    s.add_argument("--workdir", required=True, help="an LM run's directory")
    s.add_argument("--prompt", default="", help="text to continue (default: a file's start)")
    s.add_argument("--max-new", type=int, default=400, help="bytes to generate")
    s.add_argument("--temperature", type=float, default=0.8, help="0: greedy")
    s.add_argument("--top-k", type=int, default=40, help="0: no top-k")
    s.add_argument("--num", type=int, default=1, help="number of samples")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="file to write (default WORKDIR/samples/text_<step>.txt)")
    args = parser.parse_args(argv)

    from vision_jax import checkpoint as ckpt_lib
    from vision_jax import config as config_lib
    from vision_jax import sample, train
    try:
        config = sample.load_run_config(args.workdir)
        if config.task != "lm":
            raise config_lib.ConfigError(f"{args.workdir} is a {config.task!r} run, not 'lm'")
        run, step, state = train.restore_workdir(config, args.workdir)
        texts = run.task.sample_text(_params_of(config, state), state.model_state,
                                     jax.random.key(args.seed), args.prompt.encode("utf-8"),
                                     args.max_new, args.temperature, args.top_k, num=args.num)
    except (config_lib.ConfigError, ckpt_lib.CheckpointError, ValueError) as e:
        print(f"python -m vision_jax.tasks.lm sample: error: {e}", file=sys.stderr)
        return 2
    texts = [texts] if args.num == 1 else texts
    decoded = [corpus_lib.decode(np.frombuffer(t, np.uint8)) for t in texts]
    rule = "\n" + "-" * 72 + "\n"
    report = (f"# {args.workdir} step {step}; prompt {args.prompt!r}, temperature "
              f"{args.temperature}, top_k {args.top_k}, seed {args.seed}\n"
              + rule.join(decoded) + "\n")
    out = args.out or os.path.join(args.workdir, "samples", f"text_{step}.txt")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(report)
    print(report + f"(written to {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
