"""PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks",
arXiv:1601.06759, Sec. 3.4-3.5; gated blocks from "Conditional Image Generation
with PixelCNN Decoders", arXiv:1606.05328, eq. 2-4), sized for 16x16 images.

    images [B, H, W, C] in [-1, 1], labels [B] -> logits [B, H, W, C, 256]

An autoregressive model of the 8-bit subpixels in raster order: rows top to
bottom, columns left to right, and within a pixel the colour channels in the
order R -> G -> B (the paper's channel masking, Fig. 4 of arXiv:1601.06759).
Logit (i, j, c) sees only the subpixels before (i, j, c) in that order:

  - every convolution is masked: kernel rows above the centre are open, the
    centre row is open left of the centre, everything right of and below the
    centre is closed;
  - at the centre tap, the features are split into C contiguous colour groups
    (hidden channel k of n belongs to group k * C // n); mask A (the first
    layer, on the image) lets group g see input groups < g, mask B (every later
    layer, on features) groups <= g. The 256 logits of channel c are output
    group c.

Layout: a 7x7 mask-A convolution to `width` features; `blocks` residual
blocks; ReLU -> 1x1 (mask B) -> ReLU -> 1x1 (mask B) to C x 256 logits: a
256-way softmax per subpixel (the paper's discrete output). A residual block
is gated (`gated=True`: x + 1x1(tanh(a) * sigmoid(b)), [a, b] = kxk masked
conv of x) or plain (x + 1x1(ReLU(kxk(ReLU(x))))). A class-conditional model
adds a learned per-class bias to the kxk output of every block (the Gated
PixelCNN's V^T h for a one-hot h). The 1x1 layers are masked too: without
the centre mask a 1x1 convolution would mix the colour groups.

One stack of masked convolutions has the blind spot of the first PixelCNN
(arXiv:1606.05328, Fig. 1): pixels up and to the right, beyond the kernel's
reach at each layer, are never seen. The Gated PixelCNN's vertical and
horizontal stacks remove it; this model keeps the single stack (simpler, and
the causality test in tests/test_likelihood.py is about the order, not about
how much of the past is seen).

Sizes (`variant`), as (width, residual blocks, block kernel, gated):
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from vision_jax.models.layers import boxed, check_choice

SIZES: dict[str, tuple[int, int, int, bool]] = {
    "T": (12, 2, 3, True),    # tests
    "S": (32, 5, 3, True),    # the CPU run of configs/pixelcnn.py
    # Near the PixelRNN paper's CIFAR-10 PixelCNN (15 layers of h = 128 features, plain
    # residual blocks; 3.14 bits/dim in its Table 5).
    "B": (128, 15, 3, False),
}
__doc__ += "".join(f"\n  {k:<2} {v}" for k, v in SIZES.items()) + "\n"

INIT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
LEVELS = 256  # 8-bit subpixels


def channel_groups(n: int, groups: int, repeats: int = 1) -> np.ndarray:
    """The colour group of each of n channels: `repeats` copies of contiguous groups
    (repeats = 2 for the two halves of a gated layer)."""
    per = n // repeats
    return (np.arange(n) % per) * groups // per


def causal_mask(kernel: int, cin: int, cout: int, groups: int, mask_type: str,
                out_repeats: int = 1) -> np.ndarray:
    """[k, k, cin, cout] 0/1 mask of a raster-order, channel-grouped causal convolution."""
    check_choice("pixelcnn", "mask_type", mask_type, ("A", "B"))
    c = kernel // 2
    m = np.zeros((kernel, kernel, cin, cout), np.float32)
    m[:c] = 1.0
    m[c, :c] = 1.0
    g_in = channel_groups(cin, groups)[:, None]
    g_out = channel_groups(cout, groups, out_repeats)[None, :]
    m[c, c] = (g_in < g_out) if mask_type == "A" else (g_in <= g_out)
    return m


class MaskedConv(nn.Module):
    features: int
    kernel: int
    mask_type: str = "B"
    groups: int = 3            # colour channels of the image
    out_repeats: int = 1
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        mask = causal_mask(self.kernel, x.shape[-1], self.features, self.groups,
                           self.mask_type, self.out_repeats)
        return nn.Conv(self.features, (self.kernel, self.kernel), padding="SAME",
                       mask=jnp.asarray(mask), dtype=self.dtype, param_dtype=self.param_dtype,
                       kernel_init=boxed(INIT, None, None, "conv_in", "conv_out"),
                       bias_init=boxed(nn.initializers.zeros, "conv_out"), name="conv")(x)


class PixelCNN(nn.Module):
    variant: str = "S"
    channels: int = 3
    num_classes: int = 0     # 0: unconditional
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, images, labels=None):
        check_choice("pixelcnn", "variant", self.variant, SIZES)
        width, blocks, kernel, gated = SIZES[self.variant]
        c = self.channels
        if images.shape[-1] != c:
            raise ValueError(f"pixelcnn: images have {images.shape[-1]} channels, the model {c}")
        dt = {"groups": c, "dtype": self.dtype, "param_dtype": self.param_dtype}

        def conv(h, features, k, name, mask_type="B", repeats=1):
            return MaskedConv(features, k, mask_type, out_repeats=repeats, name=name, **dt)(h)

        def class_bias(h, name):
            # A per-class bias adds nothing from the image: causality is untouched.
            if not self.num_classes:
                return h
            table = nn.Embed(self.num_classes, h.shape[-1], dtype=self.dtype,
                             param_dtype=self.param_dtype,
                             embedding_init=boxed(nn.initializers.normal(1.0), "classes",
                                                  "embed"), name=name)
            return h + table(labels)[:, None, None, :]

        h = conv(images.astype(self.dtype), width, 7, "conv_in", mask_type="A")
        for i in range(blocks):
            if gated:
                pre = class_bias(conv(h, 2 * width, kernel, f"block_{i}_gate", repeats=2),
                                 f"block_{i}_class")
                a, b = jnp.split(pre, 2, axis=-1)
                h = h + conv(jnp.tanh(a) * nn.sigmoid(b), width, 1, f"block_{i}_out")
            else:
                r = class_bias(conv(nn.relu(h), width, kernel, f"block_{i}_conv"),
                               f"block_{i}_class")
                h = h + conv(nn.relu(r), width, 1, f"block_{i}_out")
        h = conv(nn.relu(h), width, 1, "head")
        logits = conv(nn.relu(h), c * LEVELS, 1, "logits")
        return logits.reshape(*logits.shape[:-1], c, LEVELS).astype(jnp.float32)
