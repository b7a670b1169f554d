"""Geometric validity of polygons in the package's dict format (OGC rules via shapely)."""

from __future__ import annotations

import shapely

from .raster import parse_polygons

__all__ = ["polygon_is_valid", "to_shapely"]


def to_shapely(polygon: dict) -> shapely.Polygon:
    """Convert one polygon dict to a ``shapely.Polygon`` (raises ``ValueError`` if malformed)."""
    ((ext, holes),) = parse_polygons([polygon])
    return shapely.Polygon(ext, holes)


def polygon_is_valid(polygon: dict) -> bool:
    """True iff ``polygon`` is well formed (``exterior`` ring of >= 3 finite [x, y] points,
    optional ``holes``) and is a valid OGC polygon with a positive area: rings simple, holes
    inside the exterior, rings touching at most at isolated points, interior connected.
    Never raises for bad input; returns False instead."""
    try:
        geom = to_shapely(polygon)
    except (ValueError, TypeError):
        return False
    return bool(geom.is_valid and geom.area > 0)
