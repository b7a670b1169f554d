"""Polygons read from another tool's file: LabelHub's validation, or (asked for) a repair with shapely's
`make_valid` that reports what it changed. Shared by the CVAT, Label Studio and COCO imports."""

from __future__ import annotations

from dataclasses import dataclass, field

from shapely.geometry import MultiPolygon, Polygon
from shapely.validation import make_valid

from labelhub.core.errors import DomainError
from labelhub.regions.validation import polygons_clean


@dataclass
class Repairs:
    """Regions whose polygons were repaired: {"path", "region", "problem", "parts"} each."""

    on: bool = False
    repaired: list[dict] = field(default_factory=list)


def _polygons_of(geometry) -> list[dict]:
    """The polygonal parts of a shapely geometry as LabelHub polygons (rings open)."""
    parts = _polygons_in(geometry)
    out = []
    for p in parts:
        if p.is_empty or p.area <= 0:
            continue
        out.append(
            {
                "exterior": [list(c) for c in p.exterior.coords[:-1]],
                "holes": [[list(c) for c in ring.coords[:-1]] for ring in p.interiors],
            }
        )
    return out


def _polygons_in(geometry) -> list[Polygon]:
    """The polygons of a geometry; a collection keeps its polygons and drops its lines and points."""
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [p for g in getattr(geometry, "geoms", []) for p in _polygons_in(g)]


def polygons_read(
    polygons: list[dict], *, at: str, region_id: str, width: int, height: int, repairs: Repairs
) -> list[dict]:
    """Validated polygons. An invalid one (self-intersecting, ...) raises DomainError as a drawn one
    would, unless repairs are on: then `make_valid` of its exterior and holes replaces it (its
    polygonal parts; a bow-tie becomes two triangles) and the region is reported in `repairs`."""
    try:
        return polygons_clean(polygons, at, width, height)
    except DomainError as exc:
        if not repairs.on or exc.code != "self_intersection":
            raise
        problem = exc.message
    fixed: list[dict] = []
    for poly in polygons:
        shape = Polygon(poly["exterior"], poly.get("holes") or [])
        if shape.is_valid:
            fixed.append(poly)
            continue
        fixed += _polygons_of(make_valid(shape))
    if not fixed:
        raise DomainError(f"{problem} The repaired polygon has no area.", field=at, code="self_intersection")
    cleaned = polygons_clean(fixed, at, width, height)
    repairs.repaired.append({"path": at, "region": region_id, "problem": problem, "parts": len(cleaned)})
    return cleaned


__all__ = ["Repairs", "polygons_read"]
