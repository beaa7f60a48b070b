"""Zhang et al. 2017's image randomisations (data.image_randomization): pixel
shuffles are permutations (one for all images, or one per image), Gaussian
images match the data's moments, and all of them reach every split, on both
input paths, with the labels untouched."""

import numpy as np
import pytest

from vision_jax import data
from vision_jax.data import pipeline


def _coded(n, h=6, w=5, c=3):
    """n images whose pixels are all different (so a permutation can be read off),
    each image with its own values."""
    base = np.arange(h * w * c).reshape(h, w, c) % 251
    return np.stack([(base + 3 * i) % 256 for i in range(n)]).astype(np.uint8)


def _permutation(before, after):
    """The pixel positions p with after[k] = before[p[k]] (pixels are whole [C] vectors)."""
    b, a = before.reshape(-1, before.shape[-1]), after.reshape(-1, after.shape[-1])
    where = {row.tobytes(): k for k, row in enumerate(b)}
    assert len(where) == len(b)  # every pixel distinct: the map is well defined
    return np.array([where[row.tobytes()] for row in a])


def test_pixel_shuffles_are_permutations():
    images = _coded(4)
    orders = {}
    for kind in ("shuffled_pixels", "random_pixels"):
        out = [pipeline.randomized_image(im, i, kind=kind, seed=7, split=split)
               for split in ("train", "test") for i, im in enumerate(images)]
        originals = [im for _ in ("train", "test") for im in images]
        orders[kind] = [_permutation(o, r) for o, r in zip(originals, out)]
        for o, r, p in zip(originals, out, orders[kind]):
            # The multiset of pixel values of each image is kept ...
            assert r.shape == o.shape and r.dtype == o.dtype
            assert sorted(map(bytes, o.reshape(-1, 3))) == sorted(map(bytes, r.reshape(-1, 3)))
            assert sorted(p) == list(range(30)) and (p != np.arange(30)).any()
        # ... and it is a pure function of (seed, split, index).
        again = pipeline.randomized_image(images[2], 2, kind=kind, seed=7, split="train")
        np.testing.assert_array_equal(again, out[2])
    # One fixed permutation for every image of every split; a new one per image otherwise.
    assert all((p == orders["shuffled_pixels"][0]).all() for p in orders["shuffled_pixels"])
    assert len({p.tobytes() for p in orders["random_pixels"]}) == 8
    other_seed = pipeline.randomized_image(images[0], 0, kind="shuffled_pixels", seed=8,
                                           split="train")
    assert not (_permutation(images[0], other_seed) == orders["shuffled_pixels"][0]).all()
    # A clip moves the same pixels in every frame; a greyscale image keeps its shape.
    clip = np.stack([images[0], images[0]])
    shuffled = pipeline.randomized_image(clip, 0, kind="random_pixels", seed=1, split="train")
    np.testing.assert_array_equal(shuffled[0], shuffled[1])
    grey = pipeline.randomized_image(images[0, ..., 0], 0, kind="random_pixels", seed=1,
                                     split="train")
    assert grey.shape == (6, 5) and sorted(grey.ravel()) == sorted(images[0, ..., 0].ravel())


def test_gaussian_images_match_the_moments_and_ignore_the_image():
    image = np.zeros((64, 64, 3), np.uint8)
    out = pipeline.randomized_image(image, 5, kind="gaussian", seed=0, split="train",
                                    mean=(100.0, 120.0, 140.0), std=(20.0, 30.0, 10.0))
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), [100, 120, 140], atol=1.5)
    np.testing.assert_allclose(out.reshape(-1, 3).std(0), [20, 30, 10], rtol=0.05)
    same = pipeline.randomized_image(image + 9, 5, kind="gaussian", seed=0, split="train",
                                     mean=(100.0, 120.0, 140.0), std=(20.0, 30.0, 10.0))
    np.testing.assert_array_equal(out, same)  # nothing of the image survives


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    data.prepare(dict(name="digits", data_dir=path))
    return path


def _eval(cfg, split):
    batches = data.make_eval_batches(cfg, split=split, global_batch_size=300, process_index=0,
                                     process_count=1)
    images, labels = zip(*[(b["image"][b["mask"] > 0], b["label"][b["mask"] > 0])
                           for b in batches])
    return np.concatenate(images), np.concatenate(labels)


def test_randomisations_reach_every_split_on_both_paths(digits_dir):
    clean = dict(name="digits", data_dir=digits_dir, image_size=8, num_train_examples=300)
    for split in ("train", "test"):
        images, labels = _eval(clean, split)
        for kind in ("shuffled_pixels", "random_pixels", "gaussian"):
            cfg = {**clean, "image_randomization": kind, "image_randomization_seed": 3}
            memory, memory_labels = _eval({**cfg, "in_memory": True}, split)
            grain, grain_labels = _eval({**cfg, "in_memory": False}, split)
            np.testing.assert_array_equal(memory, grain)  # the two input paths agree
            np.testing.assert_array_equal(memory_labels, labels)  # labels stay true
            np.testing.assert_array_equal(grain_labels, labels)
            if kind == "gaussian":
                assert not np.isclose(memory, images).all()
                continue
            # Each image is the clean one with its pixels moved as randomized_image says.
            expected = [pipeline.randomized_image(np.round((im + 1) * 127.5).astype(np.uint8),
                                                  i, kind=kind, seed=3, split=split)
                        for i, im in enumerate(images)]
            np.testing.assert_allclose(memory, np.stack(expected) / 127.5 - 1, atol=1e-6)
    # The Gaussian images have the training pixels' moments (before clipping at 0).
    train, _ = _eval(clean, "train")
    noise, _ = _eval({**clean, "image_randomization": "gaussian"}, "train")
    assert abs(noise.mean() - train.mean()) < 0.15
    # The training stream carries them too.
    batch = next(data.make_train_iterator({**clean, "image_randomization": "random_pixels"},
                                          global_batch_size=32, seed=0, process_index=0,
                                          process_count=1))
    assert batch["image"].shape == (32, 8, 8, 3)
    with pytest.raises(ValueError, match="image_randomization"):
        _eval({**clean, "image_randomization": "blur"}, "test")
