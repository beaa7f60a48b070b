"""Classifiers before deep learning: kNN (L1/L2, chunked top-k, votes, CV) and the
linear softmax / linear SVM through the real trainer, on hand-made points and
on the built-in `digits` dataset."""

import jax
import numpy as np
import pytest

from vision_jax import knn, train

from helpers import tiny_config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def digits(data_dir):
    """Digits as flat pixels, through the same pipeline the trainer reads."""
    c = tiny_config("linear.py", data_dir, "data.name=digits", "data.image_size=8")
    return knn.load_arrays(c.data, "train"), knn.load_arrays(c.data, "test")


def test_l1_and_l2_disagree_where_geometry_says_so():
    # From the origin, (3, 0) is nearer in L1 (3 < 4) and (2, 2) nearer in L2 (2.83 < 3).
    train_x = np.array([[3.0, 0.0], [2.0, 2.0]])
    train_y = np.array([0, 1])
    query = np.zeros((1, 2))
    assert knn.fit_predict(train_x, train_y, query, k=1, metric="l1").tolist() == [0]
    assert knn.fit_predict(train_x, train_y, query, k=1, metric="l2").tolist() == [1]
    d, i = knn.nearest_neighbors(train_x, query, k=2, metric="l1")
    np.testing.assert_allclose(d, [[3.0, 4.0]])
    assert i.tolist() == [[0, 1]]
    d, i = knn.nearest_neighbors(train_x, query, k=2, metric="l2")
    np.testing.assert_allclose(d, [[8.0, 9.0]])  # squared
    assert i.tolist() == [[1, 0]]


def test_majority_vote_and_tie_breaking():
    # Majority wins regardless of order; a 2-2 tie goes to the class met first.
    neighbours = [[5, 1, 1], [2, 1, 1, 2], [1, 2, 2, 1], [4, 0, 7]]
    got = [knn.vote(np.array([n]), num_classes=8)[0] for n in neighbours]
    assert got == [1, 2, 1, 4]
    # Three points of class 1 far away beat one of class 0 nearby when k=3.
    train_x = np.array([[0.1], [1.0], [1.1], [1.2]])
    assert knn.fit_predict(train_x, [0, 1, 1, 1], np.zeros((1, 1)), k=3).tolist() == [1]
    assert knn.fit_predict(train_x, [0, 1, 1, 1], np.zeros((1, 1)), k=1).tolist() == [0]


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_chunked_top_k_equals_brute_force(metric):
    # Small integers make many exact ties (and exact float32 arithmetic), so
    # this also checks that ties go to the smaller training index whatever
    # the chunking: numpy's stable argsort is the reference.
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 3, (203, 5)).astype(np.float32)
    test_x = rng.integers(0, 3, (45, 5)).astype(np.float32)
    diff = test_x[:, None, :].astype(np.float64) - train_x[None]
    full = np.abs(diff).sum(-1) if metric == "l1" else (diff ** 2).sum(-1)
    want_i = np.argsort(full, axis=1, kind="stable")[:, :7]
    for query_chunk, train_chunk in [(16, 37), (45, 203), (7, 1)]:
        d, i = knn.nearest_neighbors(train_x, test_x, 7, metric,
                                     query_chunk=query_chunk, train_chunk=train_chunk)
        np.testing.assert_array_equal(i, want_i)
        np.testing.assert_allclose(d, np.take_along_axis(full, want_i, 1))
    # And the un-chunked jitted distances agree with the chunked search.
    full_jax = np.asarray(knn.pairwise_distances(jax.numpy.asarray(test_x),
                                                 jax.numpy.asarray(train_x), metric))
    np.testing.assert_allclose(full_jax, full)


def test_cross_validation_picks_the_k_that_generalises(tmp_path):
    # Two well-separated blobs with 20% of labels flipped: 1-NN copies the
    # noise (expected accuracy 0.8^2 + 0.2^2 = 0.68), a wide vote recovers
    # the blob's label (about 0.8).
    rng = np.random.default_rng(1)
    y_clean = rng.integers(0, 2, 400)
    x = rng.normal(size=(400, 2)) + 6.0 * y_clean[:, None]
    y = np.where(rng.random(400) < 0.2, 1 - y_clean, y_clean)
    cv = knn.cross_validate(x, y, ks=[1, 3, 25], folds=4, metric="l2")
    assert list(cv) == [1, 3, 25] and all(len(r["folds"]) == 4 for r in cv.values())
    assert cv[1]["mean"] < 0.75 < cv[25]["mean"]
    assert knn.best_k(cv) == 25
    assert knn.best_k({1: {"mean": 0.9}, 3: {"mean": 0.9}}) == 1  # ties: smaller k
    knn.plot_cv(cv, str(tmp_path / "cv.png"))
    assert (tmp_path / "cv.png").stat().st_size > 1000


def test_clear_errors():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="metric='cosine'"):
        knn.fit_predict(x, [0, 1, 0, 1], x, k=1, metric="cosine")
    with pytest.raises(ValueError, match="k=5 must be between 1 and"):
        knn.fit_predict(x, [0, 1, 0, 1], x, k=5)
    with pytest.raises(ValueError, match=r"\[rows, features\]"):
        knn.fit_predict(np.zeros((4, 2, 2)), [0, 1, 0, 1], x, k=1)
    with pytest.raises(ValueError, match="folds=9"):
        knn.cross_validate(x, [0, 1, 0, 1], ks=[1], folds=9)


def test_knn_on_digits(digits):
    # Measured: 5-fold CV on the 1,500 training digits picks k=1 (L2), which
    # scores 0.990 on the 297 test digits (`python -m vision_jax.knn
    # --dataset digits --metric l2 --ks 1,3,5,7 --folds 5`).
    (x, y), (x_test, y_test) = digits
    assert x.shape == (1500, 8 * 8 * 3) and x_test.shape == (297, 192)
    assert x.min() >= -1.0 and x.max() <= 1.0
    cv = knn.cross_validate(x, y, ks=[1, 3, 5], folds=3, metric="l2")
    assert all(r["mean"] > 0.95 for r in cv.values())
    k = knn.best_k(cv)
    accuracy = np.mean(knn.fit_predict(x, y, x_test, k, "l2") == y_test)
    assert accuracy >= 0.97


@pytest.mark.parametrize("loss, bound", [
    # Measured 0.943 (softmax) and 0.963 (hinge) after 60 steps of batch 128.
    ("softmax", 0.92),
    ("multiclass_hinge", 0.94),  # a linear SVM
])
def test_linear_classifiers_on_digits(data_dir, tmp_path, loss, bound):
    c = tiny_config("linear.py", data_dir, "data.name=digits", "data.image_size=8",
                    "total_steps=60", "batch_size=128", "optimizer.learning_rate=1e-2",
                    f"loss={loss}", "log_every_steps=50", "checkpoint.every_steps=1000")
    summary = train.train(c, str(tmp_path))
    assert summary["params"] == 8 * 8 * 3 * 10 + 10
    assert summary["eval_accuracy"] >= bound
