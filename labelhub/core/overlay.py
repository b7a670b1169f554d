"""Region overlays drawn over image thumbnails for the admin console: inline SVG, no extra requests."""

from __future__ import annotations

import base64

from django.utils.html import format_html, mark_safe


def _ring_path(ring: list[list[float]], scale: float) -> str:
    return "M" + " L".join(f"{x * scale:.1f},{y * scale:.1f}" for x, y in ring) + " Z"


def overlay_svg(*, image, regions: list[dict], colors: dict[str, str], size: int = 256) -> str:
    """An SVG showing the image's thumbnail with each region's polygons (holes cut out) in its class colour."""
    if not image.thumbnail:
        return "-"
    try:
        with image.thumbnail.open("rb") as fh:
            data = base64.b64encode(fh.read()).decode("ascii")
    except OSError:
        return "(thumbnail missing)"
    scale = size / max(image.width, image.height)
    w, h = image.width * scale, image.height * scale
    paths = []
    for region in regions or []:
        color = colors.get(str(region.get("label")), "#ffe119")
        d = " ".join(
            _ring_path(ring, scale)
            for poly in region.get("polygons") or []
            for ring in [poly["exterior"], *poly.get("holes", [])]
        )
        if d:
            paths.append(
                format_html(
                    '<path d="{}" fill="{}" fill-opacity="0.35" stroke="{}" stroke-width="1" fill-rule="evenodd"/>',
                    d,
                    color,
                    color,
                )
            )
    return format_html(
        '<svg width="{}" height="{}" viewBox="0 0 {} {}" xmlns="http://www.w3.org/2000/svg">'
        '<image href="data:image/jpeg;base64,{}" width="{}" height="{}"/>{}</svg>',
        f"{w:.0f}",
        f"{h:.0f}",
        f"{w:.1f}",
        f"{h:.1f}",
        data,
        f"{w:.1f}",
        f"{h:.1f}",
        mark_safe("".join(paths)),
    )


def project_colors(project) -> dict[str, str]:
    return {c["name"]: c.get("color", "#e6194b") for c in project.label_schema}
