"""Built-in 2-D toy densities for continuous normalising flows (vision_jax/tasks/ffjord.py).

Generated in numpy from a seed, nothing stored or downloaded; each has mean
about 0 and spread about 1-2, like the toy sets of the FFJORD paper
(Grathwohl et al. 2019, arXiv:1810.01367, Fig. 2):
  moons         two interleaved half circles (as sklearn.datasets.make_moons),
                Gaussian noise 0.1, scaled by 2 and centred
  rings         four concentric circles of radii 1, 2, 3, 4 (scaled by 0.8),
                noise 0.08
  checkerboard  uniform on 8 of the 16 unit squares of [-4, 4]^2 (halved side:
                FFJORD's checkerboard)
"""

from __future__ import annotations

import numpy as np

DENSITIES = ("moons", "rings", "checkerboard")


def sample(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points [n, 2] float32 of density `name`."""
    if name == "moons":
        upper = rng.random(n) < 0.5
        angle = np.pi * rng.random(n)
        x = np.where(upper, np.cos(angle), 1.0 - np.cos(angle))
        y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
        pts = np.stack([x - 0.5, y - 0.25], -1) * 2.0 + 0.2 * rng.standard_normal((n, 2))
    elif name == "rings":
        radius = 0.8 * rng.integers(1, 5, n)
        angle = 2.0 * np.pi * rng.random(n)
        pts = (radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
               + 0.08 * rng.standard_normal((n, 2)))
    elif name == "checkerboard":
        x = 4.0 * rng.random(n) - 2.0
        y = rng.random(n) - 2.0 * rng.integers(0, 2, n) + np.floor(x) % 2
        pts = 2.0 * np.stack([x, y], -1)
    else:
        raise ValueError(f"toy density {name!r} is not one of {list(DENSITIES)}")
    return pts.astype(np.float32)
