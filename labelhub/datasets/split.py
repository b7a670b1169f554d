"""The seeded stratified split of a snapshot into train/val/test: the request's fractions checked, and
each export item assigned its subset."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

from django.db.models import JSONField
from django.db.models.functions import Coalesce

from labelhub.core.errors import DomainError

from .models import Export, ExportItem, Subset

SUBSETS = (Subset.TRAIN.value, Subset.VAL.value, Subset.TEST.value)


def split_clean(split: Any) -> dict:
    """{"train", "val", "test"} fractions that sum to 1 and an integer `seed`; default all train, seed 0."""
    if split is None:
        split = {}
    if not isinstance(split, dict):
        raise DomainError("split is an object.", field="split")
    unknown = set(split) - {"train", "val", "test", "seed"}
    if unknown:
        raise DomainError(f"Unknown keys: {sorted(unknown)}.", field="split")
    given = {k: split[k] for k in SUBSETS if k in split}
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value <= 1):
            raise DomainError(f"{key} is a fraction between 0 and 1.", field=f"split.{key}")
    if not given:
        given = {"train": 1.0}
    missing = [k for k in SUBSETS if k not in given]
    rest = 1.0 - sum(given.values())
    for k in missing:  # unnamed subsets share what is left
        given[k] = max(rest, 0.0) / len(missing)
    if abs(sum(given.values()) - 1.0) > 1e-6:
        raise DomainError("train + val + test must sum to 1.", field="split")
    seed = split.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DomainError("seed is an integer.", field="split.seed")
    return {
        "train": float(given["train"]),
        "val": float(given["val"]),
        "test": float(given["test"]),
        "seed": seed,
    }


def _rank(seed: int, image_id: int) -> str:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest()


def split_assign(
    items: list[tuple[int, int, frozenset[str]]], split: dict, class_order: list[str]
) -> dict[int, str]:
    """Assign each item (item id, image id, classes in the image) to train/val/test.

    Stratified by the image's rarest class (fewest images in this export hold it; ties broken by
    schema order; images without regions form their own stratum). Within a stratum the images are
    ordered by sha256("seed:image_id") and cut at the cumulative fractions (rounded), so the split
    depends only on the seed and the snapshot.
    """
    images_with = Counter(c for _, _, classes in items for c in classes)
    order = {name: i for i, name in enumerate(class_order)}
    strata: dict[str, list[tuple[str, int]]] = {}
    for item_id, image_id, classes in items:
        key = min(classes, key=lambda c: (images_with[c], order.get(c, 1 << 30))) if classes else ""
        strata.setdefault(key, []).append((_rank(split["seed"], image_id), item_id))
    out: dict[int, str] = {}
    for members in strata.values():
        members.sort()
        n = len(members)
        cut_train = math.floor(n * split["train"] + 0.5)
        cut_val = math.floor(n * (split["train"] + split["val"]) + 0.5)
        for index, (_, item_id) in enumerate(members):
            out[item_id] = "train" if index < cut_train else "val" if index < cut_val else "test"
    return out


def split_items(export: Export, classes: set[str] | None, chunk: int) -> None:
    split = export.split or {"train": 1.0, "val": 0.0, "test": 0.0, "seed": 0}
    if split.get("train", 1.0) >= 1.0:
        export.items.exclude(subset=Subset.TRAIN).update(subset=Subset.TRAIN)
        return
    rows = []
    for item_id, image_id, regions in (
        export.items.order_by("image_id")
        .values_list("id", "image_id", Coalesce("revision__regions", "regions", output_field=JSONField()))
        .iterator(chunk_size=chunk)
    ):
        labels = frozenset(r["label"] for r in regions or [] if classes is None or r["label"] in classes)
        rows.append((item_id, image_id, labels))
    assigned = split_assign(rows, split, export.project.class_names)
    del rows
    for subset in SUBSETS:
        ids = [i for i, s in assigned.items() if s == subset]
        for start in range(0, len(ids), 5000):
            ExportItem.objects.filter(id__in=ids[start : start + 5000]).update(subset=subset)
