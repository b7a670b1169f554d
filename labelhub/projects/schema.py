"""Validation of a project's label schema and QA pipeline (plain data, checked before saving)."""

from __future__ import annotations

import re
from typing import Any

from labelhub.accounts.models import Role
from labelhub.core.errors import DomainError

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
REGION_KINDS = ("polygon", "mask")
# A "thing" is countable (each region one object instance); "stuff" is amorphous (sky, road): at most one
# region per class and image. Panoptic exports write things as instances and stuff as one segment.
CLASS_TYPES = ("thing", "stuff")
# How a project is labelled: "instance" (regions may overlap, the default), "semantic" (every class is
# stuff and no pixel has two regions) or "panoptic" (things and stuff, no pixel has two regions unless
# their `z_order` differs: the higher one owns the pixel).
SEGMENTATION_TYPES = ("instance", "semantic", "panoptic")
NAME = re.compile(r"^[^\x00-\x1f]{1,100}$")
# Colours given to classes that come without one, in order, skipping those the schema already uses:
# Okabe & Ito (2002), then Paul Tol's muted set (SRON note 09-002), as the app's palette (UI.md).
PALETTE = (
    "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#000000",
    "#332288", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77", "#cc6677", "#882255", "#aa4499",
)  # fmt: skip
# A class hotkey: one letter or digit (the app binds it; commands keep their own keys).
HOTKEY = re.compile(r"^[a-z0-9]$")


def label_schema_clean(schema: Any) -> list[dict]:
    if not isinstance(schema, list) or not schema:
        raise DomainError("The label schema is a non-empty list of classes.", field="label_schema")
    seen: set[str] = set()
    cleaned = []
    given = {
        c.get("color", "").lower() for c in schema if isinstance(c, dict) and isinstance(c.get("color"), str)
    }
    spare = iter([c for c in PALETTE if c not in given])
    hotkeys: set[str] = set()
    for i, item in enumerate(schema):
        where = f"label_schema[{i}]"
        if not isinstance(item, dict):
            raise DomainError("Each class is an object with name, color and kinds.", field=where)
        name = item.get("name")
        if not isinstance(name, str) or not NAME.match(name) or not name.strip():
            raise DomainError("A class name is 1 to 100 printable characters.", field=f"{where}.name")
        if name in seen:
            raise DomainError(f"Class '{name}' appears twice.", field=f"{where}.name")
        seen.add(name)
        color = item.get("color") or next(spare, PALETTE[i % len(PALETTE)])
        if not isinstance(color, str) or not COLOR.match(color):
            raise DomainError("A colour is written #rrggbb.", field=f"{where}.color")
        kinds = item.get("kinds", list(REGION_KINDS))
        if not isinstance(kinds, list) or not kinds or any(k not in REGION_KINDS for k in kinds):
            raise DomainError(
                f"kinds is a non-empty list drawn from {list(REGION_KINDS)}.", field=f"{where}.kinds"
            )
        class_type = item.get("type", "thing")
        if class_type not in CLASS_TYPES:
            raise DomainError(f"type is one of {list(CLASS_TYPES)}.", field=f"{where}.type")
        hotkey = item.get("hotkey") or ""
        if not isinstance(hotkey, str) or (hotkey and not HOTKEY.match(hotkey.lower())):
            raise DomainError("A hotkey is one letter or digit.", field=f"{where}.hotkey")
        if hotkey and hotkey.lower() in hotkeys:
            raise DomainError(f"Hotkey '{hotkey}' is used by another class.", field=f"{where}.hotkey")
        unknown = set(item) - {"name", "color", "kinds", "type", "hotkey"}
        if unknown:
            raise DomainError(f"Unknown keys: {sorted(unknown)}.", field=where)
        row = {"name": name, "color": color.lower(), "kinds": list(dict.fromkeys(kinds)), "type": class_type}
        if hotkey:
            hotkeys.add(hotkey.lower())
            row["hotkey"] = hotkey.lower()
        cleaned.append(row)
    return cleaned


def pipeline_clean(pipeline: Any) -> list[dict]:
    if not isinstance(pipeline, list) or not pipeline:
        raise DomainError("The pipeline is a non-empty, ordered list of stages.", field="pipeline")
    names: list[str] = []
    cleaned = []
    for i, stage in enumerate(pipeline):
        where = f"pipeline[{i}]"
        if not isinstance(stage, dict):
            raise DomainError("Each stage is an object with name and role.", field=where)
        name = stage.get("name")
        if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9_-]{0,39}$", name):
            raise DomainError("A stage name is lowercase letters, digits, '-' or '_'.", field=f"{where}.name")
        if name in names or name in {"done"}:
            raise DomainError(f"Stage name '{name}' is taken.", field=f"{where}.name")
        role = stage.get("role", Role.ANNOTATOR if i == 0 else Role.REVIEWER)
        if role not in Role.values:
            raise DomainError(f"role is one of {Role.values}.", field=f"{where}.role")
        rate = stage.get("sample_rate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= float(rate) <= 1.0:
            raise DomainError("sample_rate is a number from 0 to 1.", field=f"{where}.sample_rate")
        if i == 0 and float(rate) != 1.0:
            raise DomainError(
                "The first stage sees every task (sample_rate 1).", field=f"{where}.sample_rate"
            )
        reject_to = stage.get("reject_to", None if i == 0 else names[0] if names else None)
        if i == 0:
            reject_to = None
        elif reject_to not in names:
            raise DomainError(
                f"reject_to names an earlier stage: one of {names}.", field=f"{where}.reject_to"
            )
        unknown = set(stage) - {"name", "role", "sample_rate", "reject_to"}
        if unknown:
            raise DomainError(f"Unknown keys: {sorted(unknown)}.", field=where)
        names.append(name)
        cleaned.append({"name": name, "role": role, "sample_rate": float(rate), "reject_to": reject_to})
    return cleaned
