"""The API does not change by accident: the OpenAPI schema generated from the code equals the committed
snapshot (docs/openapi.yaml) apart from prose (`description` and `summary` texts).

A deliberate API change refreshes the snapshot in the same commit, so the diff shows in review:

    .venv/bin/python manage.py spectacular --file docs/openapi.yaml
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

SNAPSHOT = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
PROSE = ("description", "summary")
MAX_DIFF_LINES = 200


def generated_schema() -> dict:
    """What `manage.py spectacular` writes, read back as YAML (the same generator and renderer)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiYamlRenderer

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return yaml.safe_load(OpenApiYamlRenderer().render(schema, renderer_context={}))


def without_prose(node: Any) -> Any:
    """`node` without the `description` and `summary` texts. Only string values go: a schema property
    that happens to be named `description` (an object) stays."""
    if isinstance(node, dict):
        return {
            key: without_prose(value)
            for key, value in node.items()
            if not (key in PROSE and isinstance(value, str))
        }
    if isinstance(node, list):
        return [without_prose(value) for value in node]
    return node


def schema_diff(expected: dict, actual: dict) -> list[str]:
    """A unified diff of the two schemas (prose removed, keys sorted); empty when they agree."""

    def lines(schema: dict) -> list[str]:
        return yaml.safe_dump(without_prose(schema), sort_keys=True, width=200).splitlines()

    return list(
        difflib.unified_diff(
            lines(expected), lines(actual), "docs/openapi.yaml", "generated from the code", lineterm="", n=4
        )
    )


def test_the_api_equals_its_snapshot_apart_from_descriptions():
    assert SNAPSHOT.is_file(), "docs/openapi.yaml is missing: manage.py spectacular --file docs/openapi.yaml"
    diff = schema_diff(yaml.safe_load(SNAPSHOT.read_text()), generated_schema())
    shown = "\n".join(diff[:MAX_DIFF_LINES])
    more = f"\n... {len(diff) - MAX_DIFF_LINES} more lines" if len(diff) > MAX_DIFF_LINES else ""
    assert not diff, (
        "The API differs from docs/openapi.yaml (descriptions and summaries aside). If the change is "
        "deliberate, refresh the snapshot in the same commit:\n"
        "    .venv/bin/python manage.py spectacular --file docs/openapi.yaml\n" + shown + more
    )


def test_the_comparison_ignores_prose_and_sees_everything_else():
    base = {
        "paths": {
            "/api/v1/x/": {
                "post": {
                    "operationId": "x_create",
                    "summary": "Old summary.",
                    "description": "Old text.",
                    "responses": {"200": {"description": "OK"}},
                }
            }
        },
        "components": {"schemas": {"Export": {"properties": {"description": {"type": "string"}}}}},
    }
    reworded = yaml.safe_load(yaml.safe_dump(base))
    reworded["paths"]["/api/v1/x/"]["post"]["description"] = "New text."
    reworded["paths"]["/api/v1/x/"]["post"]["summary"] = "New summary."
    reworded["paths"]["/api/v1/x/"]["post"]["responses"]["200"]["description"] = "Fine."
    assert schema_diff(base, reworded) == []

    renamed = yaml.safe_load(yaml.safe_dump(base))
    renamed["paths"]["/api/v1/x/"]["post"]["operationId"] = "x_make"
    assert any("x_make" in line for line in schema_diff(base, renamed))

    field_gone = yaml.safe_load(yaml.safe_dump(base))
    del field_gone["components"]["schemas"]["Export"]["properties"]["description"]
    assert schema_diff(base, field_gone)  # a field named `description` is API, not prose
