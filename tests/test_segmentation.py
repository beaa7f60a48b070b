"""Semantic segmentation: the metrics on a hand-computed example, masks that
follow their images through augmentation, and the task through the real
trainer on the 8-device mesh (the U-Net end to end, FCN one sharded step)."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import DATA_AND_FSDP, check_one_train_step, one_train_step, tiny_config

from vision_jax import sharding
from vision_jax.data import augment, pipeline, shapes
from vision_jax.tasks import segmentation


# ---------------------------------------------------------------------------
# Metrics


def test_confusion_and_miou_by_hand():
    # Two 2x3 images; the second is padding (weight 0) and must not count.
    labels = np.array([[[0, 0, 1], [1, 2, 2]], [[2, 2, 2], [2, 2, 2]]])
    preds = np.array([[[0, 1, 1], [1, 2, 0]], [[0, 0, 0], [0, 0, 0]]])
    weights = np.array([1, 0])[:, None, None] * np.ones_like(labels)
    conf = np.asarray(jax.jit(segmentation.confusion_matrix, static_argnums=3)(
        labels, preds, weights, 4))
    # rows: true class, columns: predicted; class 3 never appears anywhere.
    np.testing.assert_array_equal(conf, [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0],
                                         [0, 0, 0, 0]])
    m = segmentation.segmentation_metrics(conf, ("background", "a", "b", "c"))
    # IoU = TP / (row + column - TP): background 1/3, a 2/(2+3-2), b 1/(2+1-1).
    assert m["iou_background"] == pytest.approx(1 / 3)
    assert m["iou_a"] == pytest.approx(2 / 3) and m["iou_b"] == pytest.approx(1 / 2)
    assert "iou_c" not in m  # absent from truth and predictions: left out of the means
    assert m["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert m["miou_fg"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["pixel_accuracy"] == pytest.approx(4 / 6)
    assert m["mean_accuracy"] == pytest.approx((1 / 2 + 2 / 2 + 1 / 2) / 3)
    # A class that is predicted but absent from the truth counts, with IoU 0.
    conf2 = conf.copy()
    conf2[0, 3] = 2
    m2 = segmentation.segmentation_metrics(conf2, ("background", "a", "b", "c"))
    assert m2["iou_c"] == 0.0 and m2["miou"] == pytest.approx((1 / 5 + 2 / 3 + 1 / 2) / 4)
    with pytest.raises(ValueError, match="no pixels"):
        segmentation.segmentation_metrics(np.zeros((2, 2)), ("background", "a"))


def test_confusion_sums_exactly_across_devices():
    """The confusion matrix of a batch sharded over the 8 devices equals
    numpy's count, to the pixel."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 9, (16, 12, 12))
    preds = rng.integers(0, 9, (16, 12, 12))
    weights = (rng.random(16) < 0.7)[:, None, None] * np.ones_like(labels)
    mesh = sharding.make_mesh({"data": -1, "fsdp": 1, "tensor": 1})
    spec = sharding.batch_sharding(mesh, sharding.rules_from_config(None))
    assert spec.num_devices == 8
    conf = jax.jit(segmentation.confusion_matrix, static_argnums=3)(
        *(jax.device_put(jnp.asarray(x), spec) for x in (labels, preds, weights)), 9)
    expected = np.zeros((9, 9), np.int64)
    np.add.at(expected, (labels.ravel(), preds.ravel()), weights.ravel())
    np.testing.assert_array_equal(np.asarray(conf), expected)


# ---------------------------------------------------------------------------
# Augmentation: masks move with their pixels


def _blocks(size=32):
    """An asymmetric map of four labels in blocks, and a grey image showing it."""
    mask = np.zeros((size, size), np.uint8)
    mask[:size // 2, : 3 * size // 4] = 1
    mask[size // 2:, size // 4:] = 2
    mask[3 * size // 4:, : size // 4] = 3
    return mask, np.repeat((mask * 60)[..., None], 3, axis=-1).astype(np.uint8)


def _pixels(image):
    return np.round((image + 1.0) * 127.5).astype(np.int64)


def test_shift_and_flip_move_the_mask_exactly():
    mask, image = _blocks()
    cfg = augment.AugmentConfig(crop_padding=4, flip=True)
    moved = 0
    for seed in range(8):
        out, maps = augment.augment_dense(image, {"m": mask}, 32, cfg,
                                          np.random.default_rng(seed))
        np.testing.assert_array_equal(_pixels(out)[..., 0], maps["m"].astype(np.int64) * 60)
        assert maps["m"].dtype == np.uint8
        moved += not np.array_equal(maps["m"], mask)
    assert moved >= 6  # the transform really moves things


def test_crop_and_resize_keep_mask_aligned():
    mask, image = _blocks()
    cfg = augment.AugmentConfig(random_resized_crop=0.3, flip=True)
    for seed in range(8):
        out, maps = augment.augment_dense(image, {"m": mask}, 24, cfg,
                                          np.random.default_rng(seed))
        assert out.shape == (24, 24, 3) and maps["m"].shape == (24, 24)
        assert set(np.unique(maps["m"])) <= {0, 1, 2, 3}  # nearest: labels never blended
        # Bilinear image vs nearest mask differ only along the block edges.
        agree = np.mean(np.round(_pixels(out)[..., 0] / 60) == maps["m"])
        stale = np.mean(np.round(_pixels(out)[..., 0] / 60) == augment.resize_nearest(mask, 24))
        assert agree > 0.9, (seed, agree)
        assert stale < agree or np.array_equal(maps["m"], augment.resize_nearest(mask, 24))


def test_dense_augmentation_is_augment_image_plus_geometry_only():
    """On a real scene: the image is augment_image's (same draws, existing
    behaviour unchanged) and photometric ops leave the mask alone."""
    params = shapes.ShapesParams(resolution=32)
    ex = shapes.render_example(params, "train", 3)
    import io

    from PIL import Image
    image = np.asarray(Image.open(io.BytesIO(ex["image"])))
    geometric = augment.AugmentConfig(random_resized_crop=0.5, crop_padding=2, flip=True)
    full = augment.AugmentConfig(random_resized_crop=0.5, crop_padding=2, flip=True,
                                 color_jitter=0.4, cutout=6)
    for seed in range(4):
        out, maps = augment.augment_dense(image, {"m": ex["mask"]}, 32, full,
                                          np.random.default_rng(seed))
        np.testing.assert_array_equal(
            out, augment.augment_image(image, 32, full, np.random.default_rng(seed)))
        _, plain = augment.augment_dense(image, {"m": ex["mask"]}, 32, geometric,
                                         np.random.default_rng(seed))
        np.testing.assert_array_equal(maps["m"], plain["m"])
    with pytest.raises(ValueError, match="randaugment"):
        augment.augment_dense(image, {"m": ex["mask"]}, 32,
                              augment.AugmentConfig(randaugment_layers=1),
                              np.random.default_rng(0))


# ---------------------------------------------------------------------------
# The task through the trainer


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _config(data_dir, model, *overrides):
    return tiny_config(f"dense/segmentation.py:runlocal,model={model}", data_dir,
                       "data.shapes.resolution=16", "data.image_size=16",
                       "data.shapes.train_size=64", "data.shapes.test_size=40",
                       "batch_size=16", "total_steps=2", "eval_every_steps=0",
                       "log_every_steps=1", "checkpoint.every_steps=2", *overrides)


def test_pipeline_flips_mask_with_image(data_dir):
    """Training batches of the real pipeline: each image is its scene or the
    scene mirrored, and its mask is mirrored with it."""
    c = _config(data_dir, "unet")
    pipeline.prepare(c.data)
    scenes = next(iter(pipeline.make_eval_batches(
        c.data, split="train", global_batch_size=64, process_index=0, process_count=1,
        extra_keys=("segmentation",))))
    batch = next(pipeline.make_train_iterator(
        c.data, global_batch_size=32, seed=0, process_index=0, process_count=1,
        extra_keys=("segmentation",)))
    flips = 0
    for image, mask in zip(batch["image"], batch["segmentation"]):
        straight = np.flatnonzero(np.all(scenes["image"] == image, axis=(1, 2, 3)))
        mirrored = np.flatnonzero(np.all(scenes["image"][:, :, ::-1] == image, axis=(1, 2, 3)))
        assert len(straight) + len(mirrored) >= 1
        if len(straight):
            np.testing.assert_array_equal(mask, scenes["segmentation"][straight[0]])
        else:
            np.testing.assert_array_equal(mask, scenes["segmentation"][mirrored[0]][:, ::-1])
            flips += 1
    assert 0 < flips < len(batch["image"])


def test_fcn_one_step_on_a_data_and_fsdp_mesh(data_dir):
    """FCN-8s (ResNet-18 backbone at width 4): one step of the trainer's jitted
    train step on a 2 x 4 data/FSDP mesh moves every parameter, the zero-
    initialised skip classifiers included."""
    c = _config(data_dir, "fcn", "model.width=4", "schedule.warmup_steps=0")
    check_one_train_step(*one_train_step(c, DATA_AND_FSDP, num_classes=8,
                                         image_shape=(16, 16, 3)))


def test_unet_trains_and_evaluates_through_the_trainer(data_dir, tmp_path, monkeypatch):
    """The U-Net through the real trainer on 8 devices: two steps on the Grain
    pipeline, then the eval, whose confusion matrix counts every real test pixel
    exactly once (40 scenes, padded to 48); `vision-jax segment` draws its figure."""
    from vision_jax import train

    totals = {}
    reduce = segmentation.Segmentation.eval_reduce

    def keep(self, t):
        totals.update(t)
        return reduce(self, t)

    monkeypatch.setattr(segmentation.Segmentation, "eval_reduce", keep)
    workdir = str(tmp_path / "unet")
    summary = train.train(_config(data_dir, "unet", "model.width=4", "model.levels=2"), workdir)
    assert jax.device_count() == 8 and summary["steps"] == 2
    assert np.isfinite(summary["train_loss"])
    conf = segmentation.confusion_from_totals(totals, 9)
    assert conf.sum() == 40 * 16 * 16 and totals["count"] == 40
    assert summary["eval_pixel_accuracy"] == np.trace(conf) / conf.sum()
    assert summary["eval_miou"] == pytest.approx(
        segmentation.segmentation_metrics(conf, ("background", *shapes.SHAPES))["miou"])
    out = str(tmp_path / "seg.png")
    assert segmentation.main(["--workdir", workdir, "--num", "3", "--out", out]) == 0
    assert os.path.getsize(out) > 1000
