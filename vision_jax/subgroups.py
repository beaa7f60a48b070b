"""Subgroup metrics: accuracy per group, the worst group, the gap, and
intersectional groups ("Gender Shades"-style disparities, Buolamwini & Gebru
2018; the worst-group accuracy of Sagawa et al. 2020).

A *family* partitions the examples by one or more integer attributes of a
batch. On `shapes` the attributes are the background kind (`group`), the
main object's colour (`color`) and the label, and the families are

    background            4 groups   (the spurious attribute)
    background_x_color   32 groups   (intersectional: background x colour)
    label_x_background   32 groups   (Sagawa et al.'s groups (y, a): the
                                      headline `worst_group_accuracy`)

Eval accumulates, per family and group, the number of examples and of
correct predictions (`group_sums`, inside the jitted eval step, as flat
scalar sums like every other eval metric); `report` turns the split's totals
into accuracies. Empty groups are left out of the worst group and the gap
(a group with no test example has no accuracy).
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

#: family -> the batch keys it crosses, in mixed-radix order (first = slowest).
FAMILIES = {
    "background": ("group",),
    "background_x_color": ("group", "color"),
    "label_x_background": ("label", "group"),
}
#: The family whose worst group is the run's `worst_group_accuracy`.
HEADLINE = "label_x_background"
_PREFIX = "subgroup"  # eval-step keys: subgroup/<family>/<correct|count>/<g>


def attribute_keys(data_cfg) -> tuple[str, ...]:
    """The per-example attributes (pipeline `extra_keys`) a dataset has groups
    by: on `shapes` the background kind and the main object's colour; none
    elsewhere."""
    return ("group", "color") if data_cfg.get("name") == "shapes" else ()


def attribute_names(class_names) -> dict[str, tuple[str, ...]]:
    """{attribute: names of its values} on `shapes`."""
    from vision_jax.data import shapes
    return {"group": shapes.BACKGROUNDS, "color": shapes.COLOR_NAMES,
            "label": tuple(class_names or shapes.SHAPES)}


def group_names(family: str, names: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Names of a family's groups in index order, e.g. 'noise+red'."""
    combos = [""]
    for key in FAMILIES[family]:
        combos = [f"{c}+{n}" if c else n for c in combos for n in names[key]]
    return combos


def group_index(batch: Mapping, family: str, sizes: Mapping[str, int]):
    """Each example's group in `family`: its attributes in mixed radix (numpy
    in, numpy out; jax in, jax out)."""
    index = 0
    for key in FAMILIES[family]:
        index = index * sizes[key] + batch[key]
    return index


def group_sums(correct, groups, mask, num_groups: int):
    """(correct predictions per group, examples per group), float32 [G] each,
    over the real examples (mask == 1)."""
    onehot = jax.nn.one_hot(groups, num_groups, dtype=jnp.float32) * mask[:, None]
    return correct.astype(jnp.float32) @ onehot, onehot.sum(0)


def eval_sums(correct, batch: Mapping, names: Mapping[str, tuple[str, ...]]) -> dict:
    """The eval step's flat scalar sums for every family (needs the batch's
    attribute keys and its 'mask')."""
    sizes = {k: len(v) for k, v in names.items()}
    out = {}
    for family in FAMILIES:
        g = int(np.prod([sizes[k] for k in FAMILIES[family]]))
        right, count = group_sums(correct, group_index(batch, family, sizes), batch["mask"], g)
        for i in range(g):
            out[f"{_PREFIX}/{family}/correct/{i}"] = right[i]
            out[f"{_PREFIX}/{family}/count/{i}"] = count[i]
    return out


def group_report(correct, count, names, family: str) -> dict:
    """Accuracy per non-empty group, worst and best group, and the gap
    (best - worst), from per-group totals."""
    correct, count = np.asarray(correct, np.float64), np.asarray(count, np.float64)
    seen = count > 0
    if not seen.any():
        return {}
    acc = np.where(seen, correct / np.maximum(count, 1.0), np.nan)
    out = {f"accuracy/{family}/{n}": float(a) for n, a, s in zip(names, acc, seen) if s}
    worst, best = float(np.nanmin(acc)), float(np.nanmax(acc))
    out.update({f"worst_group_accuracy/{family}": worst, f"group_gap/{family}": best - worst,
                f"groups/{family}": int(seen.sum())})
    return out


def report(totals: Mapping[str, float], names: Mapping[str, tuple[str, ...]]) -> dict:
    """The subgroup metrics of a split from its accumulated eval sums (an empty
    dict when eval carried no attributes)."""
    out = {}
    for family in FAMILIES:
        labels = group_names(family, names)
        correct = [totals.get(f"{_PREFIX}/{family}/correct/{i}") for i in range(len(labels))]
        if correct[0] is None:
            continue
        count = [totals[f"{_PREFIX}/{family}/count/{i}"] for i in range(len(labels))]
        out.update(group_report(correct, count, labels, family))
    if f"worst_group_accuracy/{HEADLINE}" in out:
        out["worst_group_accuracy"] = out[f"worst_group_accuracy/{HEADLINE}"]
        out["group_gap"] = out[f"group_gap/{HEADLINE}"]
    return out


def is_sum_key(key: str) -> bool:
    return key.startswith(_PREFIX + "/")
