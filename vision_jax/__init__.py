"""vision_jax: a pure-functional JAX/Flax codebase for deep learning in computer vision."""

__version__ = "0.1.0"
