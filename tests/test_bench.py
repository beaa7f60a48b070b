"""`vision-jax bench`: the train and infer modes on the 8-device CPU mesh, the
profile summary, and the attention padding that cuDNN needs to train ViT."""

import jax
import numpy as np

from vision_jax import bench, config as config_lib
from vision_jax.models.vit import attend_padded

from helpers import config_path


def _config():
    c = config_lib.load_config(config_path("default.py"))
    config_lib.apply_overrides(c, ["batch_size=16"])
    return c


def test_bench_train_reports_speed_flops_memory_and_a_profile(tmp_path):
    r = bench.bench(_config(), steps=2, warmup=1, num_classes=10, profile=str(tmp_path))
    assert r["mode"] == "train" and r["devices"] == jax.device_count() == 8
    assert r["images_per_second"] > 0 and r["compile_seconds"] > 0
    # The default CNN: XLA's count on CPU, three times the forward for training.
    assert r["train_flops_per_image"] > 3 * r["params"]
    assert r["program_bytes_per_device"] > 4 * r["params"] / 8  # sharded params at least
    ops = bench.trace_summary(str(tmp_path))
    assert ops and all(ms > 0 for _, ms in ops)


def test_bench_infer_times_throughput_and_latency():
    r = bench.bench_infer(_config(), steps=2, warmup=1, num_classes=10, batch_size=16)
    assert r["throughput"]["batch_size"] == 16 and r["latency"]["batch_size"] == 1
    for name in ("throughput", "latency"):
        assert r[name]["images_per_second"] > 0
        assert r[name]["program_bytes_per_device"] > 0


def test_padded_attention_equals_attention_on_odd_lengths():
    q, k, v = (jax.random.normal(jax.random.key(i), (2, 197, 4, 8)) for i in range(3))
    want = jax.nn.dot_product_attention(q, k, v)
    got = attend_padded(q, k, v, None, None)
    np.testing.assert_allclose(got, want, atol=1e-6)
    grads = [jax.grad(lambda q, f=f: (f(q) ** 2).sum())(q) for f in (
        lambda q: jax.nn.dot_product_attention(q, k, v),
        lambda q: attend_padded(q, k, v, None, None))]
    np.testing.assert_allclose(grads[1], grads[0], atol=1e-5)


def test_train_profiles_the_steps_it_is_asked_for(tmp_path):
    from vision_jax import train
    from helpers import tiny_config
    config = tiny_config("default.py", str(tmp_path / "tfds"), "total_steps=3",
                         "eval_every_steps=0", "checkpoint.every_steps=3",
                         f"profile.dir={tmp_path / 'profile'}", "profile.first_step=2",
                         "profile.steps=1")
    train.train(config, str(tmp_path / "run"))
    ops = dict(bench.trace_summary(str(tmp_path / "profile"), top=1000))
    assert ops and sum(ops.values()) > 0
