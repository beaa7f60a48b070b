"""Test set-up: 8 emulated CPU devices, strict rank promotion, fast CPU compiles.

Compilation dominates the run time of tiny models on CPU, so the tests ask
XLA for its cheapest backend optimisation and share a persistent compilation
cache between test processes (and the subprocesses they start). Runs that are
compared with each other always share these settings.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests/helpers.py

TEST_XLA_FLAGS = ("--xla_force_host_platform_device_count=8 "
                  "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
CACHE_DIR = os.path.join(tempfile.gettempdir(), "vision_jax_test_jax_cache")

# Must happen before jax is imported anywhere in the test process; the same
# variables reach the subprocesses that tests start.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + TEST_XLA_FLAGS).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["JAX_COMPILATION_CACHE_DIR"] = CACHE_DIR
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
