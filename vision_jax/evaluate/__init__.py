"""Metrics that judge a model's outputs, each checked against its reference.

  fid.py           Frechet distance, KID (unbiased MMD^2), kNN precision/recall
  features.py      the in-house feature network (no Inception download needed)
  samples.py       everything about a set of generated images: the metrics, the
                   floor (train vs test) and the Gaussian baseline, conditional
                   accuracy, the memorisation check; `vision-jax evaluate-samples`
  memorization.py  nearest training images of generated ones, in pixels and features
"""
