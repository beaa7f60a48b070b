"""`digits`: scikit-learn's bundled handwritten digits as a TFDS dataset.

Real data that ships with scikit-learn (1,797 8x8 greyscale digits from the
UCI optical-recognition set), so tests and laptop runs have a natural-image
task that needs no download. Pixel values 0..16 are scaled to 0..255 and the
grey channel is replicated to RGB so that models built for the RGB `shapes`
dataset take it unchanged. The split is a fixed permutation: the first 1,500
examples train, the remaining 297 test.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

NUM_TRAIN = 1500
SPLIT_SEED = 0


def _images_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """All digits as uint8 [N, 8, 8, 3] and int64 [N], in split order."""
    from sklearn.datasets import load_digits  # only needed when generating

    digits = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(digits.target))
    grey = np.round(digits.images[order] * (255.0 / 16.0)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1), digits.target[order]


class Digits(tfds.core.GeneratorBasedBuilder):
    """8x8 handwritten digits 0-9 from scikit-learn."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                # Raw uint8 tensor rather than an encoded Image: 192 bytes per
                # example, and TFDS can decode it without TensorFlow or Pillow.
                "image": tfds.features.Tensor(shape=(8, 8, 3), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # bundled with scikit-learn
        images, labels = _images_and_labels()
        return {
            "train": self._generate_examples(images[:NUM_TRAIN], labels[:NUM_TRAIN]),
            "test": self._generate_examples(images[NUM_TRAIN:], labels[NUM_TRAIN:]),
        }

    def _generate_examples(self, images, labels):
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image, "label": int(label)}
