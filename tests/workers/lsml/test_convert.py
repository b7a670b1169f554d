"""Label Studio results <-> LabelHub geometry, both ways, and the brush RLE against Label Studio's own
converter (`label-studio-converter`'s encode/decode, run in the ML backend's venv: tests/lsml/env.py)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from tests.lsml.env import lsml_python
from workers.geometry import polygons_to_mask
from workers.geometry.brush import brush_decode, brush_encode
from workers.lsml import (
    Limits,
    ResultError,
    box_result,
    click_context,
    label_config,
    prediction_shapes,
    region_results,
)

CONVERTER = """
import json, sys
import numpy as np
from label_studio_converter.brush import decode_rle, mask2rle
cases = json.load(sys.stdin)
out = []
for case in cases:
    h, w = case["shape"]
    mask = np.zeros(h * w, dtype=np.uint8)
    mask[case["on"]] = 255
    decoded = decode_rle(case["ours"]).reshape(h, w, 4)[:, :, 3]
    out.append({"theirs": [int(v) for v in mask2rle(mask.reshape(h, w))],
                "decoded_on": np.flatnonzero(decoded.ravel() >= 128).tolist()})
print(json.dumps(out))
"""


def masks() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    speckle = rng.random((23, 31)) < 0.4
    long_runs = np.zeros((300, 400), dtype=bool)
    long_runs[20:280, :] = True  # runs of 4 * 104000 values: longer than one 16-bit run record
    return [speckle, long_runs, np.zeros((5, 7), bool), np.ones((9, 4), bool)]


def test_brush_rle_matches_label_studio_converter_both_ways():
    cases = [
        {"shape": m.shape, "on": np.flatnonzero(m.ravel()).tolist(), "ours": brush_encode(m)} for m in masks()
    ]
    done = subprocess.run(
        [str(lsml_python()), "-c", CONVERTER],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
    )
    for mask, case, theirs in zip(masks(), cases, json.loads(done.stdout), strict=True):
        h, w = mask.shape
        assert theirs["decoded_on"] == case["on"]  # the converter reads ours
        assert np.array_equal(brush_decode(theirs["theirs"], h, w), mask)  # we read the converter's


CLASSES = [
    {"name": "cat", "color": "#ff0000", "kinds": ["polygon", "mask"]},
    {"name": 'd"og & <co>', "color": "#00ff00", "kinds": ["polygon"]},
]


def test_label_config_has_unique_control_names_and_escapes_classes():
    config = label_config(CLASSES)
    assert config.count('name="polygon"') == config.count('name="brush"') == 1
    assert config.count('name="rectangle"') == config.count('name="keypoint"') == 1
    assert "<Label value='d\"og &amp; &lt;co&gt;'" in config
    brush = config.split("<BrushLabels")[1].split("</BrushLabels>")[0]
    assert "cat" in brush and "og" not in brush  # only classes with the mask kind


def shapes_of(results: list[dict], w: int, h: int, limits: Limits | None = None):
    return prediction_shapes(
        {"result": results, "score": 0.5, "model_version": "v3"},
        width=w,
        height=h,
        classes=["cat", "dog"],
        limits=limits or Limits(),
    )


def test_every_result_type_converts_both_ways():
    w, h = 64, 48
    ring = [[3.0, 4.0], [40.5, 6.25], [20.0, 30.0]]
    polygon = {
        "id": "a",
        "label": "cat",
        "kind": "polygon",
        "polygons": [{"exterior": ring, "holes": []}],
        "score": 0.9,
    }
    (result,) = region_results(polygon, width=w, height=h)
    assert result["from_name"] == "polygon" and result["value"]["points"][1] == [
        40.5 * 100 / 64,
        6.25 * 100 / 48,
    ]
    (shape,), score, version = shapes_of([result], w, h)
    assert np.allclose(shape["points"], ring, atol=1e-12) and shape["score"] == 0.9 and version == "v3"
    assert score == 0.5
    holed = {"id": "b", "label": "cat", "kind": "polygon",
             "polygons": [{"exterior": [[2, 2], [30, 2], [30, 30], [2, 30]], "holes": [[[10, 10], [20, 10], [20, 20]]]}]}  # fmt: skip
    mask = polygons_to_mask(holed["polygons"], h, w)
    (brush,) = region_results(holed, width=w, height=h, mask=mask)
    assert brush["type"] == "brushlabels" and brush["from_name"] == "brush"
    (shape,), _, _ = shapes_of([brush], w, h)
    assert np.array_equal(shape["mask"], mask)
    box = box_result([8.0, 6.0, 40.0, 30.0], label="dog", width=w, height=h)
    (shape,), _, _ = shapes_of([box], w, h)
    assert shape["box"] == pytest.approx([8.0, 6.0, 40.0, 30.0], abs=1e-12)
    box["value"]["rotation"] = 90  # clockwise about the top-left corner (8, 6)
    box["value"].update(x=50.0, width=10.0, height=10.0)
    (shape,), _, _ = shapes_of([box], w, h)
    corners = np.array(shape["corners"])
    assert np.allclose(corners[0], [32, 6]) and np.allclose(corners[1], [32, 6 + 6.4])
    assert np.allclose(corners[3], [32 - 4.8, 6])
    context = click_context(
        points=[[16, 12], [1, 1]], point_labels=[1, 0], box=[8, 6, 40, 30], label="cat", width=w, height=h
    )
    first, second, rect = context["result"]
    assert first["is_positive"] is True and second["is_positive"] is False
    assert (first["value"]["x"], first["value"]["y"]) == (25.0, 25.0) and rect["type"] == "rectanglelabels"
    assert shapes_of(context["result"], w, h)[0][0]["type"] == "box"  # keypoints are prompts, skipped


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (
            {
                "type": "polygonlabels",
                "value": {"points": [[0, 0], [101, 0], [0, 5]], "polygonlabels": ["cat"]},
            },
            "out of range",
        ),
        (
            {
                "type": "polygonlabels",
                "value": {"points": [[0, 0], [float("nan"), 0], [0, 5]], "polygonlabels": ["cat"]},
            },
            "finite",
        ),
        (
            {
                "type": "polygonlabels",
                "value": {"points": [[0, 0], [1, 0], [0, 5]], "polygonlabels": ["cow"]},
            },
            "unknown class",
        ),
        (
            {
                "type": "polygonlabels",
                "original_width": 65,
                "value": {"points": [[0, 0], [1, 0], [0, 5]], "polygonlabels": ["cat"]},
            },
            "64x48",
        ),
        (
            {
                "type": "brushlabels",
                "value": {
                    "format": "rle",
                    "rle": brush_encode(np.ones((4, 4), bool)),
                    "brushlabels": ["cat"],
                },
            },
            "does not decode",
        ),
        (
            {
                "type": "rectanglelabels",
                "value": {"x": 90, "y": 0, "width": 20, "height": 5, "rectanglelabels": ["cat"]},
            },
            "out of range",
        ),
        ({"type": "videorectangle", "value": {}}, "cannot become regions"),
    ],
)
def test_bad_results_are_refused_naming_the_field(result, words):
    with pytest.raises(ResultError) as refused:
        shapes_of([result], 64, 48)
    assert words in str(refused.value) and refused.value.path.startswith("prediction.result[0]")


def test_limits_are_checked_before_any_geometry():
    big = {"type": "polygonlabels", "value": {"points": [[1, 1]] * 11, "polygonlabels": ["cat"]}}
    with pytest.raises(ResultError, match="11 polygon vertices; at most 10"):
        shapes_of([big], 64, 48, Limits(max_vertices=10))
    rle = {"type": "brushlabels", "value": {"format": "rle", "rle": [0] * 50, "brushlabels": ["cat"]}}
    with pytest.raises(ResultError, match="50 brush RLE bytes; at most 40"):
        shapes_of([rle], 64, 48, Limits(max_mask_bytes=40))
    with pytest.raises(ResultError, match="3 results; at most 2"):
        shapes_of([big, big, big], 64, 48, Limits(max_results=2))
