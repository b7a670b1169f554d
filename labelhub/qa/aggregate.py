"""Sums of quality samples computed by the database: no sample's JSON is decoded in Python, so the
metrics and the report of 10,000 tasks read a few hundred grouped rows (decoding 34,000 JSON values
alone took ~2 s on the dev box). Per-class figures live in JSON objects keyed by class name; they are
unnested with PostgreSQL's jsonb_each (SQLite: json_each)."""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import Count, FloatField, IntegerField, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from .segmentation import KEYS

SCORE_KEYS = KEYS[1:]  # dice, iou, boundary_f1: per class


def _num(path: str, kind=FloatField):
    return Cast(KT(path), kind())


def class_sums(
    samples: QuerySet, *, column: str, inner: str | None, keys: tuple[str, ...], group: tuple[str, ...]
):
    """``{(group values..., class): [rows, sum of each key...]}`` over the JSON object `column` (or its
    member `inner`) of each sample, grouped by `group` (of "kind", "username", "model")."""
    sub_sql, params = samples.values("id").query.sql_with_params()
    postgres = connection.vendor == "postgresql"
    if postgres:
        source = f"s.{column}->'{inner}'" if inner else f"s.{column}"
        each = f"CROSS JOIN LATERAL jsonb_each({source}) e"
        value = "(e.value->>'{}')::double precision"
        model = "s.data->>'model'"
    else:
        path = f"'$.{inner}'" if inner else "'$'"
        each = f", json_each(s.{column}, {path}) e"
        value = "json_extract(e.value, '$.{}')"
        model = "json_extract(s.data, '$.model')"
    columns = {"kind": "s.kind", "username": "u.username", "model": model}
    chosen = [columns[g] for g in group]
    sums = ", ".join(f"SUM({value.format(k)})" for k in keys)
    select = ", ".join([*chosen, "e.key", "COUNT(*)", sums])
    group_by = ", ".join([*chosen, "e.key"])
    sql = (
        f"SELECT {select} FROM qa_qualitysample s {each} "
        f"LEFT JOIN auth_user u ON u.id = s.user_id WHERE s.id IN ({sub_sql}) GROUP BY {group_by}"
    )
    out: dict[tuple, list[float]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for row in cursor.fetchall():
            out[tuple(row[: len(group) + 1])] = [
                row[len(group) + 1],
                *(v or 0.0 for v in row[len(group) + 2 :]),
            ]
    return out


def score_means(samples: QuerySet, *, group: tuple[str, ...]) -> dict[tuple, dict]:
    """The label-map figures of each group of samples, like segmentation.scores_mean: ``{group values:
    {"n", "pixel_accuracy", "dice", "iou", "boundary_f1", "per_class"}}``."""
    names = {"kind": "kind", "username": "user__username", "model": "model"}
    figures = {"n": Count("id"), "pa": Sum(_num("scores__pixel_accuracy"))}
    if group:
        rows = list(
            samples.annotate(model=KT("data__model"))
            .values(*[names[g] for g in group])
            .annotate(**figures)
            .order_by()
        )
    else:  # one group: values() without fields would read whole rows
        total = samples.aggregate(**figures)
        rows = [total] if total["n"] else []
    per_class: dict[tuple, dict] = defaultdict(dict)
    for key, (n, *values) in class_sums(
        samples, column="scores", inner="per_class", keys=SCORE_KEYS, group=group
    ).items():
        per_class[key[:-1]][key[-1]] = {
            "n": n,
            **{k: round(v / n, 6) for k, v in zip(SCORE_KEYS, values, strict=True)},
        }
    out = {}
    for row in rows:
        key = tuple(row[names[g]] for g in group)
        classes = dict(sorted(per_class.get(key, {}).items()))
        means = {
            k: round(sum(c[k] for c in classes.values()) / len(classes), 6) if classes else None
            for k in SCORE_KEYS
        }
        out[key] = {
            "n": row["n"],
            "pixel_accuracy": round(row["pa"] / row["n"], 6) if row["n"] and row["pa"] is not None else None,
            **means,
            "per_class": classes,
        }
    return out


def merged(groups: list[dict]) -> dict:
    """Several score_means groups as one (weighted by their rows): e.g. every user's into the overall."""
    n = sum(g["n"] for g in groups)
    if not n:
        return {"n": 0, **{k: None for k in KEYS}, "per_class": {}}
    classes: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for g in groups:
        for name, c in g["per_class"].items():
            slot = classes[name]
            slot[0] += c["n"]
            for i, k in enumerate(SCORE_KEYS, 1):
                slot[i] += c[k] * c["n"]
    per_class = {
        name: {"n": v[0], **{k: round(v[i] / v[0], 6) for i, k in enumerate(SCORE_KEYS, 1)}}
        for name, v in sorted(classes.items())
    }
    pa = [g["pixel_accuracy"] * g["n"] for g in groups if g["pixel_accuracy"] is not None]
    return {
        "n": n,
        "pixel_accuracy": round(sum(pa) / n, 6) if pa else None,
        **{
            k: round(sum(c[k] for c in per_class.values()) / len(per_class), 6) if per_class else None
            for k in SCORE_KEYS
        },
        "per_class": per_class,
    }


def count_sums(samples: QuerySet, *, fields: tuple[str, ...], group: tuple[str, ...]) -> list[dict]:
    """Sums of integer JSON members (`fields`, paths like "errors__missing") per group."""
    return list(
        samples.values(*group)
        .annotate(samples=Count("id"), **{f.replace("__", "_"): Sum(_num(f, IntegerField)) for f in fields})
        .order_by()
    )
