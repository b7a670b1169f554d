"""A small model served by the real `label-studio-ml` server (run with the backend's own venv:
`python backend_model.py PORT MODEL_DIR LOG_DIR`). It fetches each task's image from its URL (as Label
Studio backends do), finds the controls in the labelling config it was set up with, and answers:
- pre-labels: a polygon, a rectangle and a brush mask (label-studio-converter's RLE) per image, their
  coordinates derived from the image's size; every answer is logged to LOG_DIR/predict.jsonl with the
  masks' pixel indices, so tests compare LabelHub's regions with what was returned;
- with a context (interactive clicks): a disc of radius 9 pixels around the first positive click;
- training events: written to LOG_DIR/events.jsonl; the job's result becomes the next model version.
LOG_DIR/mode (read at each call) makes it misbehave: "error" raises (HTTP 500), "slow" sleeps 5 s,
"outofrange" returns a vertex at 130%, "wrongsize" reports another image size, "many" returns 30000
vertices.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time

import numpy as np
import requests
from label_studio_converter.brush import mask2rle
from label_studio_ml.api import init_app
from label_studio_ml.model import LabelStudioMLBase
from PIL import Image

PORT, MODEL_DIR, LOG_DIR = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def mode() -> str:
    try:
        with open(os.path.join(LOG_DIR, "mode")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def log(name: str, record: dict) -> None:
    with open(os.path.join(LOG_DIR, name), "a") as f:
        f.write(json.dumps(record) + "\n")


class ShapesModel(LabelStudioMLBase):
    TRAIN_EVENTS = ("ANNOTATION_CREATED", "START_TRAINING")

    def control(self, kind: str) -> tuple[str, str, str]:
        """(from_name, to_name, first label) of the config's control of this type."""
        for name, info in self.parsed_label_config.items():
            if info["type"].lower() == kind:
                return name, info["to_name"][0], info["labels"][0]
        raise ValueError(f"no {kind} control in the config")

    def predict(self, tasks, **kwargs):
        how = mode()
        if how == "error":
            raise ValueError("the model crashed")
        if how == "slow":
            time.sleep(5)
        started = time.perf_counter()
        context = kwargs.get("context")
        out, masks = [], {}
        for task in tasks:
            reply = requests.get(task["data"]["image"], timeout=10)
            reply.raise_for_status()
            w, h = Image.open(io.BytesIO(reply.content)).size
            size = {
                "original_width": w + (1 if how == "wrongsize" else 0),
                "original_height": h,
                "image_rotation": 0,
            }
            results = []
            if context and context.get("result"):
                clicks = [
                    r for r in context["result"] if r["type"] == "keypointlabels" and r.get("is_positive")
                ]
                cx, cy = clicks[0]["value"]["x"] * w / 100, clicks[0]["value"]["y"] * h / 100
                yy, xx = np.mgrid[:h, :w]
                mask = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= 81
                name, to, label = self.control("brushlabels")
                rid = f"click-{task['id']}"
                results.append(
                    {
                        "id": rid,
                        "from_name": name,
                        "to_name": to,
                        "type": "brushlabels",
                        **size,
                        "value": {
                            "format": "rle",
                            "rle": mask2rle((mask * 255).astype(np.uint8)),
                            "brushlabels": [label],
                        },
                        "score": 0.9,
                    }
                )
                masks[rid] = np.flatnonzero(mask.ravel()).tolist()
                out.append({"result": results, "score": 0.9, "model_version": self.version()})
                continue
            name, to, label = self.control("polygonlabels")
            points = [[10.0, 10.0], [60.0, 15.0], [30.0, 70.0]]
            if how == "outofrange":
                points[1] = [130.0, 15.0]
            if how == "many":
                t = np.linspace(0, 2 * np.pi, 30000, endpoint=False)
                points = np.stack([50 + 20 * np.cos(t), 50 + 20 * np.sin(t)], 1).tolist()
            results.append(
                {
                    "id": f"p{task['id']}",
                    "from_name": name,
                    "to_name": to,
                    "type": "polygonlabels",
                    **size,
                    "value": {"points": points, "closed": True, "polygonlabels": [label]},
                    "score": 0.8,
                }
            )
            name, to, label = self.control("rectanglelabels")
            results.append(
                {
                    "id": f"r{task['id']}",
                    "from_name": name,
                    "to_name": to,
                    "type": "rectanglelabels",
                    **size,
                    "value": {
                        "x": 50.0,
                        "y": 50.0,
                        "width": 25.0,
                        "height": 30.0,
                        "rotation": 0,
                        "rectanglelabels": [label],
                    },
                    "score": 0.7,
                }
            )
            mask = np.zeros((h, w), dtype=bool)
            mask[h // 4 : h // 2, w // 8 : w // 3] = True
            mask[h - 5 :, w - 7 :] = True  # a second part, touching the corner
            name, to, label = self.control("brushlabels")
            rid = f"b{task['id']}"
            results.append(
                {
                    "id": rid,
                    "from_name": name,
                    "to_name": to,
                    "type": "brushlabels",
                    **size,
                    "value": {
                        "format": "rle",
                        "rle": mask2rle((mask * 255).astype(np.uint8)),
                        "brushlabels": [label],
                    },
                    "score": 0.6,
                }
            )
            masks[rid] = np.flatnonzero(mask.ravel()).tolist()
            out.append({"result": results, "score": 0.75, "model_version": self.version()})
        if os.environ.get("LH_BACKEND_TIMES_ONLY"):  # benchmarks: only the model's own time
            log("predict.jsonl", {"tasks": len(tasks), "seconds": time.perf_counter() - started})
            return out
        log(
            "predict.jsonl",
            {"tasks": [t["id"] for t in tasks], "context": context, "predictions": out, "masks": masks},
        )
        return out

    def version(self) -> str:
        return str(self.train_output.get("version", "INITIAL")) if self.train_output else "INITIAL"

    def process_event(self, event, data, job_id, additional_params):
        log("events.jsonl", {"event": event, "data": data, "job_id": job_id})
        if event in self.TRAIN_EVENTS:
            return {"version": f"trained-{job_id}", "tasks": len(data.get("tasks") or [data.get("task")])}
        return None


if __name__ == "__main__":
    os.environ.setdefault("LABEL_STUDIO_ML_BACKEND_V2", "1")
    app = init_app(ShapesModel, model_dir=MODEL_DIR)
    app.run(host="127.0.0.1", port=PORT, threaded=True)
