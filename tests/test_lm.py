"""The byte-level language-model task: a real step on the 8-device data+FSDP mesh,
causality, exact resume of its data, bits per byte, greedy sampling, the configs
and the sweep's analyses. A Transformer of width 16 and context 16 keeps the
compiles short."""

import functools
import json
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from vision_jax import config as config_lib, tasks, train
from vision_jax.data import corpus as corpus_lib
from vision_jax.scaling import lm_laws, store, sweep
from vision_jax.tasks import lm

from helpers import DATA_AND_FSDP, check_one_train_step, config_path, one_train_step

SEQ = 16
TINY = [f"lm.seq_len={SEQ}", "model.d_model=16", "model.num_layers=2", "model.num_heads=2",
        "model.d_ff=32", "lm.eval_windows=40", "batch_size=16", "progress_bar=False",
        # no warm-up: its first learning rate is 0, and the step must move every parameter
        "schedule.warmup_steps=0"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("corpora"))


def tiny(cache_dir, *overrides):
    c = config_lib.load_config(config_path("lm.py"))
    config_lib.apply_overrides(c, [*TINY, f"lm.cache_dir={cache_dir}", *overrides])
    return c


@pytest.fixture(scope="module")
def task_and_params(cache):
    """The tiny LM task and freshly initialised (unboxed) parameters, on the host."""
    config = tiny(cache)
    task = tasks.build(config, lm.LanguageModel.dataset_info(config))
    params, variables = task.init(jax.random.key(0), task.example_batch())
    return task, nn.unbox(params), variables


def test_lm_step_on_data_and_fsdp_mesh(cache):
    config = tiny(cache)
    before, after, metrics, shardings = one_train_step(config, DATA_AND_FSDP, num_classes=256)
    check_one_train_step(before, after, metrics, shardings)
    # random bytes: the loss starts near ln 256 nats = 8 bits per byte
    assert abs(metrics["loss"] - math.log(256)) < 1.0
    assert metrics["bits_per_byte"] == pytest.approx(metrics["loss"] / math.log(2), rel=1e-6)


def test_logits_at_t_ignore_the_inputs_after_t(task_and_params):
    task, params, variables = task_and_params
    tokens = jnp.asarray(task.synthetic_batch(2, seed=1)["tokens"])
    inputs = tokens[:, :-1]
    t = 6
    delta = jnp.zeros((2, SEQ, task.cfg.d_model))

    def nats_at_t(delta):
        def add_delta(next_fun, args, kwargs, context):  # the input embeddings + delta
            out = next_fun(*args, **kwargs)
            if isinstance(context.module, nn.Embed) and context.method_name == "__call__":
                out = out + delta
            return out
        with nn.intercept_methods(add_delta):
            nats, _ = task.token_losses(params, variables, tokens)
        return nats[:, t].sum()

    grad = np.asarray(jax.jit(jax.grad(nats_at_t))(delta))
    norms = np.abs(grad).sum(-1)  # [B, T]
    assert np.all(norms[:, t + 1:] == 0.0), "the loss at t depends on inputs after t"
    assert np.all(norms[:, :t + 1] > 0.0)
    # and changing every later token leaves the logits up to t exactly as they were
    changed = inputs.at[:, t + 1:].set((inputs[:, t + 1:] + 7) % 256)
    logits = jax.jit(task.logits)
    a = logits(params, variables, inputs)
    b = logits(params, variables, changed)
    np.testing.assert_array_equal(np.asarray(a[:, :t + 1]), np.asarray(b[:, :t + 1]))
    assert not np.allclose(np.asarray(a[:, t + 1:]), np.asarray(b[:, t + 1:]))


def test_train_iterator_resumes_exactly_and_splits_over_processes(task_and_params):
    task = task_and_params[0]
    make = functools.partial(task.train_iterator, global_batch_size=8, seed=3)
    it = make(process_index=0, process_count=1)
    first = [next(it)["tokens"] for _ in range(3)]
    state = json.loads(json.dumps(it.get_state()))  # what the checkpoint stores
    expected = next(it)["tokens"]
    fresh = make(process_index=0, process_count=1)
    fresh.set_state(state)
    np.testing.assert_array_equal(next(fresh)["tokens"], expected)
    assert expected.shape == (8, SEQ + 1) and expected.dtype == np.int32
    assert not np.array_equal(first[0], first[1])
    # two processes hold the two halves of each global batch
    halves = [make(process_index=p, process_count=2) for p in (0, 1)]
    for h in halves:
        h.set_state(state)
    np.testing.assert_array_equal(np.concatenate([next(h)["tokens"] for h in halves]), expected)
    # targets are the inputs shifted by one byte of the corpus
    train_bytes = lm.load_corpus(task.config).train
    row = expected[0]
    starts = np.flatnonzero(np.lib.stride_tricks.sliding_window_view(train_bytes, SEQ + 1)
                            [:, 0] == row[0])
    assert any(np.array_equal(train_bytes[s:s + SEQ + 1], row) for s in starts)
    with pytest.raises(ValueError, match="resuming on other bytes"):
        fresh.set_state({**state, "corpus": "0" * 16})


def test_eval_batches_cover_the_windows_once_with_a_mask(task_and_params):
    task = task_and_params[0]
    info = lm.LanguageModel.dataset_info(task.config)
    assert info.split_sizes["validation"] == 40  # lm.eval_windows
    assert info.split_sizes["train"] == (len(lm.load_corpus(task.config).train) - 1) // SEQ
    windows = corpus_lib.eval_windows(lm.load_corpus(task.config).validation, SEQ, 40)
    per_process = [task.eval_batches("validation", global_batch_size=24, process_index=p,
                                     process_count=2) for p in (0, 1)]
    assert [len(b) for b in per_process] == [2, 2]  # 40 windows padded to 2 x 24
    rows = np.concatenate([np.concatenate([per_process[0][i]["tokens"],
                                           per_process[1][i]["tokens"]]) for i in (0, 1)])
    mask = np.concatenate([np.concatenate([per_process[0][i]["mask"],
                                           per_process[1][i]["mask"]]) for i in (0, 1)])
    np.testing.assert_array_equal(rows[:40], windows)
    assert mask.sum() == 40 and not mask[40:].any()


def test_bits_per_byte_is_nats_over_ln2(task_and_params):
    task, params, variables = task_and_params
    batch = task.eval_batches("validation", global_batch_size=24, process_index=0,
                              process_count=1)[1]  # 16 real windows, 8 padding
    sums = jax.device_get(jax.jit(task.eval_step)(params, variables, batch, jax.random.key(0)))
    out = task.eval_reduce({k: float(v) for k, v in sums.items()})
    assert out["examples"] == 16 and out["tokens"] == 16 * SEQ
    assert out["bits_per_byte"] == pytest.approx(out["loss"] / math.log(2), rel=1e-6)
    nats, _ = jax.jit(task.token_losses)(params, variables, jnp.asarray(batch["tokens"][:16]))
    assert out["loss"] == pytest.approx(float(nats.mean()), rel=1e-5)  # padding is ignored


def test_greedy_sampling_is_deterministic_and_matches_argmax(task_and_params):
    task, params, variables = task_and_params
    prompt, max_new = b"def f(x):", 12  # 9 + 12 bytes > the 16-byte context: it slides
    greedy = task.sample_text(params, variables, jax.random.key(0), prompt, max_new,
                              temperature=0.0)
    assert greedy == task.sample_text(params, variables, jax.random.key(1), prompt, max_new,
                                      temperature=0.0)
    assert greedy == task.sample_text(params, variables, jax.random.key(2), prompt, max_new,
                                      temperature=1.0, top_k=1)
    # the reference: argmax of the logits of the last (at most) 16 bytes, one at a time; a
    # shorter window is padded at its end (causal: the padding cannot matter), so that one
    # compiled forward pass serves every step
    logits = jax.jit(task.logits)
    seq = list(prompt)
    for _ in range(max_new):
        window = seq[-SEQ:]
        padded = jnp.asarray([window + [0] * (SEQ - len(window))], jnp.int32)
        seq.append(int(jnp.argmax(logits(params, variables, padded)[0, len(window) - 1])))
    assert greedy == bytes(seq) and greedy.startswith(prompt)
    drawn = task.sample_text(params, variables, jax.random.key(0), b"", 20, temperature=1.0,
                             num=3)
    assert len(drawn) == 3 and all(len(t) == 20 for t in drawn) and len(set(drawn)) > 1


def test_lm_configs_build_abstractly(cache):
    """configs/lm.py builds with its own dataset info (test_config builds it with an image
    info), and every trial of both sweep variants builds, with the right N and budget."""
    c = tiny(cache)
    config_lib.validate(c, num_devices=8)
    info = lm.LanguageModel.dataset_info(c)
    run = train.setup(c, info=info)
    assert run.budget.steps_per_epoch == info.split_sizes["train"] / c.batch_size
    counts = store.parameter_counts(run.abstract.params, "transformer")
    assert counts["non_embedding_params"] == lm.transformer.param_counts(run.task.cfg)[
        "non_embedding"]
    assert counts["params"] - counts["non_embedding_params"] == 2 * 256 * 16  # in and out
    for arg in (":smoke", ""):
        s = sweep.load_sweep(config_path("scaling/lm.py") + arg)
        trials = sweep.expand(s)  # applies every trial's overrides to the base
        assert len(trials) == (9 if arg else 28)
        for trial in trials:
            cfg = sweep.trial_config(s, trial)
            mc = lm.model_config(cfg)
            n = lm.transformer.param_counts(mc)["non_embedding"]
            steps = config_lib.total_steps(cfg, 1).total_steps
            tokens = steps * cfg.batch_size * cfg.lm.seq_len
            # D = C / (6N), up to rounding to whole windows and batches
            assert abs(6 * n * tokens / cfg.lm.budget_flops - 1) < 0.03, trial.name
        sizes = {lm.transformer.param_counts(lm.model_config(sweep.trial_config(s, t)))[
            "non_embedding"] for t in trials}
        assert min(sizes) < 12_000 and (max(sizes) > 1_000_000 or arg)
    # one trial's parameter counts as the sweep records them (from abstract shapes)
    trial_cfg = sweep.trial_config(s, trials[0])
    config_lib.apply_overrides(trial_cfg, [f"lm.cache_dir={cache}"])
    assert sweep.describe(trial_cfg)["non_embedding_params"] == \
        lm.transformer.param_counts(lm.model_config(trial_cfg))["non_embedding"]


def test_lm_rejects_what_it_cannot_model(cache):
    for key, value, needle in (("vocab_size", 512, "byte-level"), ("kind", "encoder", "causal"),
                               ("max_len", 8, "shorter than")):
        c = tiny(cache)
        with c.unlocked():
            c.model[key] = value
        with pytest.raises(ValueError, match=needle):
            lm.model_config(c)


def test_kaplan_fit_recovers_its_law_and_the_analysis_writes_three_fits(tmp_path):
    rng = np.random.default_rng(0)
    truth = {"alpha_N": 0.1, "alpha_D": 0.12, "N_c": 3e8, "D_c": 1e9}
    rows = []
    for budget in (2e10, 6e10, 2e11, 6e11):
        for n in (1e4, 2e4, 4e4, 8e4, 1.6e5):
            d = budget / (6 * n)
            loss = ((truth["N_c"] / n) ** (truth["alpha_N"] / truth["alpha_D"])
                    + truth["D_c"] / d) ** truth["alpha_D"]
            rows.append({"non_embedding_params": n, "examples_seen": d / 64,
                         "final_eval_loss": loss * np.exp(rng.normal(0, 0.002)),
                         "lm.budget_flops": budget})
    df = pd.DataFrame(rows)
    law = lm_laws.fit_kaplan(df["non_embedding_params"], df["examples_seen"] * 64,
                             df["final_eval_loss"], bootstrap=10)
    assert law.params["alpha_N"] == pytest.approx(0.1, rel=0.1)
    assert law.params["alpha_D"] == pytest.approx(0.12, rel=0.1)
    assert law.r2 > 0.99
    paths, table = lm_laws.analyse(df, out=str(tmp_path), seq_len=64, bootstrap=10)
    json.dumps(table)
    assert {"kaplan", "isoflop", "chinchilla"} <= set(table)
    assert "error" not in table["kaplan"] and "params" in table["isoflop"]
    assert "identifiable" in table["chinchilla"]
    names = {os.path.basename(p) for p in paths}
    assert {"lm_kaplan.png", "lm_isoflop.png", "loss_vs_N_D_C.png", "lm_laws.txt"} <= names
