"""Video: the moving_shapes dataset (one frame cannot tell the class, by
construction), clips through the pipeline, every video model's forward pass,
and one real training run through the trainer."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import data, models
from vision_jax.data import moving_shapes as ms
from vision_jax.models import video

from helpers import tiny_config

PARAMS = ms.MovingShapesParams(resolution=16, frames=6, train_size=48, test_size=16)


def _object_pixels(clip, background):
    """Per frame, a boolean map of the pixels the shape covers (it differs from the
    static background there)."""
    return np.abs(clip.astype(np.float32) - background[None]).max(-1) > 30


def test_anchor_frame_ignores_the_label_and_motions_act_as_named():
    params = ms.MovingShapesParams(resolution=32, frames=8)
    for index in range(4):
        scene = ms.sample_scene(params, np.random.default_rng(index))
        clips = {m: ms.render_clip(params, scene, m) for m in ms.MOTIONS}
        anchors = np.stack([c[params.anchor] for c in clips.values()])
        # The frame a single-frame model sees is the same whatever the label ...
        assert (anchors == anchors[0]).all()
        # ... while the clips differ, so only the other frames carry the label.
        flat = np.stack([c.reshape(-1) for c in clips.values()])
        assert len({row.tobytes() for row in flat}) == len(ms.MOTIONS)
        pixels = {m: _object_pixels(c, np.clip(scene["background"] + 0.5, 0, 255))
                  for m, c in clips.items()}
        ys, xs = np.mgrid[:32, :32]
        cx = {m: np.array([xs[p].mean() for p in v]) for m, v in pixels.items()}
        cy = {m: np.array([ys[p].mean() for p in v]) for m, v in pixels.items()}
        area = {m: v.sum(axis=(1, 2)) for m, v in pixels.items()}
        assert cx["right"][-1] > cx["right"][0] + 4 and cx["left"][-1] < cx["left"][0] - 4
        assert cy["down"][-1] > cy["down"][0] + 4 and cy["up"][-1] < cy["up"][0] - 4
        assert area["grow"][-1] > 1.5 * area["grow"][0]
        assert area["shrink"][-1] < area["shrink"][0] / 1.5


def test_examples_are_deterministic_and_built_from_a_label_free_scene():
    a, b = ms.render_example(PARAMS, "train", 5), ms.render_example(PARAMS, "train", 5)
    assert a["image"].shape == (6, 16, 16, 3) and a["image"].dtype == np.uint8
    assert (a["image"] == b["image"]).all() and a["label"] == b["label"]
    assert not (a["image"] == ms.render_example(PARAMS, "test", 5)["image"]).all()
    # The label is drawn first and the scene after it, from draws that do not
    # depend on it: the example is that scene moved by that label's motion.
    rng = np.random.default_rng((PARAMS.seed, 0, 5))
    label = int(rng.integers(len(ms.MOTIONS)))
    clip = ms.render_clip(PARAMS, ms.sample_scene(PARAMS, rng), ms.MOTIONS[label])
    assert label == a["label"] and (clip == a["image"]).all()
    labels = [ms.render_example(PARAMS, "train", i)["label"] for i in range(48)]
    assert len(set(labels)) >= 7  # all classes occur
    translation = ms.MovingShapesParams(motions="translation", resolution=16, frames=6)
    assert {ms.render_example(translation, "train", i)["label"] for i in range(24)} == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="motions"):
        ms.MovingShapesParams(motions="zoom")
    with pytest.raises(ValueError, match="unknown keys"):
        ms.MovingShapesParams.from_mapping({"frame": 8})


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """A tiny moving_shapes set, generated once for the module."""
    path = str(tmp_path_factory.mktemp("video_tfds"))
    data.prepare(_data_cfg(path))
    return path


def _data_cfg(data_dir, **augment):
    return {"name": "moving_shapes", "data_dir": data_dir, "image_size": 16,
            "moving_shapes": {k: getattr(PARAMS, k) for k in
                              ("resolution", "frames", "train_size", "test_size")},
            "augment": augment}


def test_clips_travel_through_the_pipeline(tfds_dir):
    cfg = _data_cfg(tfds_dir)
    info = data.dataset_info(cfg)
    assert info.image_shape == (6, 16, 16, 3) and info.num_classes == 9
    assert info.class_names == ms.MOTIONS and info.split_sizes == {"train": 48, "test": 16}
    batch = next(data.make_train_iterator(cfg, global_batch_size=8, seed=0, process_index=0,
                                          process_count=1))
    assert batch["image"].shape == (8, 6, 16, 16, 3) and batch["label"].shape == (8,)
    evals = list(data.make_eval_batches(cfg, split="test", global_batch_size=8,
                                        process_index=0, process_count=1))
    expected = ms.render_example(PARAMS, "test", 3)
    np.testing.assert_allclose(evals[0]["image"][3], expected["image"] / 127.5 - 1, atol=1e-6)
    assert evals[0]["label"][3] == expected["label"]
    # A crop moves every frame alike: the augmented clip's frames share one crop.
    crop = next(data.make_train_iterator(_data_cfg(tfds_dir, crop_padding=4), global_batch_size=8,
                                         seed=0, process_index=0, process_count=1))
    assert crop["image"].shape == batch["image"].shape
    with pytest.raises(ValueError, match="direction"):
        data.make_train_iterator(_data_cfg(tfds_dir, flip=True), global_batch_size=8, seed=0,
                                 process_index=0, process_count=1)


TINY = {
    "single_frame": dict(channels=(4, 8)),
    "late_fusion": dict(channels=(4, 8)),
    "early_fusion": dict(channels=(4, 8)),
    "c3d": dict(channels=(4, 8)),
    "r2plus1d": dict(channels=(4, 8)),
    "two_stream": dict(channels=(4, 8), motion="flow"),
    "timesformer": dict(patch=4, width=8, depth=1, num_heads=2, mlp_dim=16),
}


def test_every_video_model_maps_clips_to_logits():
    assert set(TINY) == set(video.VIDEO_MODELS) <= set(models.MODELS)
    rng = np.random.default_rng(0)
    clips = rng.normal(size=(2, 4, 8, 8, 3)).astype(np.float32)
    # The same clips with every frame but the middle one changed, in one batch:
    # only the single-frame model cannot tell them apart.
    changed = clips.copy()
    changed[:, [0, 1, 3]] = 0.0
    both = np.concatenate([clips, changed])

    def random_weights(abstract):
        # Random weights drawn on the host, not the init: no compile per parameter shape
        # (the init would cost one more per model, and the Transformer's head starts at
        # zero and would hide its input).
        return jax.tree.map(lambda x: 0.3 * rng.normal(size=x.shape).astype(np.float32),
                            nn.unbox(abstract))

    for name, options in TINY.items():
        model = models.build_model({"name": name, **options}, num_classes=9)
        abstract = jax.eval_shape(lambda: model.init(jax.random.key(1), clips, train=False))
        boxed = jax.tree.leaves(abstract, is_leaf=lambda x: hasattr(x, "names"))
        assert boxed and all(hasattr(p, "names") for p in boxed), name  # logical axis names
        logits = jax.jit(model.apply, static_argnames="train")(random_weights(abstract), both,
                                                               train=False)
        assert logits.shape == (4, 9) and logits.dtype == jnp.float32, name
        assert np.allclose(logits[:2], logits[2:]) == (name == "single_frame"), name
    with pytest.raises(ValueError, match=r"\[B, T, H, W, C\]"):
        models.build_model({"name": "c3d"}, num_classes=9).init(
            jax.random.key(0), clips[:, 0], train=False)
    # The 3-D convolution computed as one 2-D convolution equals nn.Conv's 3-D one.
    conv = video.SpaceTimeConv(5, (3, 3, 3))
    weights = random_weights(jax.eval_shape(conv.init, jax.random.key(3), clips))
    ours, reference = jax.jit(lambda w, x: (
        conv.apply(w, x), nn.Conv(5, (3, 3, 3), padding="SAME").apply(w, x)))(weights, clips)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    # Tran et al. 2018, Sec. 3.5: a 3x3x3 conv 64 -> 64 becomes 3x3 to 144, then 3x1x1.
    assert video.r2plus1d_mid_channels(3, 3, 64, 64) == 144


def _smooth_scene(dx, dy):
    """A smooth colour pattern [24, 24, 3] shifted by (dx, dy) pixels."""
    y, x = np.mgrid[:24, :24].astype(np.float32)
    a = np.sin(2 * np.pi * (x - dx) / 12) * np.cos(2 * np.pi * (y - dy) / 16)
    return np.stack([a, 0.5 * a, np.cos(2 * np.pi * (x - dx) / 10)], axis=-1)


def test_two_stream_temporal_stream_sees_only_motion():
    moving = np.stack([_smooth_scene(0.6 * t, -0.4 * t) for t in range(4)])[None]
    static = np.repeat(moving[:, 2:3], 4, axis=1)  # the moving clip's anchor frame, held still
    # The temporal stream's input is zero on a static clip, for either kind of motion ...
    for kind in video.MOTION_INPUTS:
        assert not np.asarray(video.motion_input(static, kind)).any(), kind
    np.testing.assert_array_equal(video.motion_input(moving, "difference"),
                                  moving[:, 1:] - moving[:, :-1])
    # ... and the flow measures the motion: 0.6 px right and 0.4 px up per frame.
    flow = np.asarray(video.motion_input(moving, "flow"))
    assert flow.shape == (1, 3, 24, 24, 2)
    np.testing.assert_allclose(flow[0, :, 6:-6, 6:-6].mean(axis=(1, 2)),
                               [[0.6, -0.4]] * 3, atol=0.08)
    # In the model: the temporal stream's first weights cannot change the logits of
    # the static clip (its input is zero) but do change the moving clip's; both
    # clips share the frame the spatial stream sees.
    model = models.build_model({"name": "two_stream", "channels": (4, 8)}, num_classes=5)
    clips = np.concatenate([static, moving]).astype(np.float32)
    rng = np.random.default_rng(0)
    weights = jax.tree.map(lambda x: rng.normal(size=x.shape).astype(np.float32), nn.unbox(
        jax.eval_shape(lambda: model.init(jax.random.key(0), clips, train=False))))
    other = jax.tree.map(np.copy, weights)
    kernel = other["params"]["temporal_conv0"]["kernel"]
    other["params"]["temporal_conv0"]["kernel"] = rng.normal(size=kernel.shape).astype(np.float32)
    apply = jax.jit(jax.vmap(lambda w: model.apply(w, clips, train=False)))
    a, b = apply(jax.tree.map(lambda *x: np.stack(x), weights, other))
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
    assert not np.allclose(a[1], b[1])
    with pytest.raises(ValueError, match="motion"):
        models.build_model({"name": "two_stream", "motion": "warp"}, num_classes=5)


def test_one_real_training_run_on_clips(tfds_dir, tmp_path):
    from vision_jax import train
    c = tiny_config("video/clips.py:model=early_fusion,runlocal", tfds_dir,
                    "model.channels=(4,8)", "total_steps=2", "batch_size=8",
                    "data.image_size=16", "data.moving_shapes.resolution=16",
                    "data.moving_shapes.frames=6", "data.moving_shapes.train_size=48",
                    "data.moving_shapes.test_size=16", "checkpoint.every_steps=2")
    summary = train.train(c, str(tmp_path))
    assert summary["model"] == "early_fusion" and summary["dataset"] == "moving_shapes"
    assert summary["steps"] == 2 and np.isfinite(summary["train_loss"])
    assert 0.0 <= summary["eval_accuracy"] <= 1.0 and summary["forward_flops_per_example"] > 0
