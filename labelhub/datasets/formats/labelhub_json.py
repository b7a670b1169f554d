"""LabelHub's own lossless JSON.

Layout: `labelhub.json` and, with images, `images/{subset}/{file_name}`. The document:
`{"format": "labelhub", "version": 1, "project": {"id", "name", "label_schema", "pipeline"},
"export": {"id", "filters", "split", "created_at"}, "items": [{"image": {"id", "file_name",
"original_name", "width", "height", "sha256"}, "task_id", "revision", "stage" (of that revision), "subset",
"regions": [...]}]}` where regions are exactly as stored in the snapshot revision (ids, kinds,
polygons with holes, RLE, source, prediction_id, score). The items array is streamed.
"""

from __future__ import annotations

import json

from .base import ExportFormat, Record, register


@register("labelhub")
class LabelHubJsonFormat(ExportFormat):
    title = "LabelHub JSON (lossless)"
    description = "labelhub.json with every region exactly as stored, and the snapshot's revisions."

    raw_regions = True

    def begin(self) -> None:
        self.items = self.spool("labelhub-items.json")

    def add(self, record: Record) -> int:
        item = {
            "image": {
                "id": record.image_id,
                "file_name": record.file_name,
                "original_name": record.original_name,
                "width": record.width,
                "height": record.height,
                "sha256": record.sha256,
            },
            "task_id": record.task_id,
            "revision": record.revision_number,
            "stage": record.stage,
            "subset": record.subset,
        }
        if record.regions is not None:
            item["regions"] = record.regions
            self.items.append(item)
            return len(record.regions)
        text = json.dumps(item, separators=(",", ":"))
        self.items.append_raw(text[:-1] + ',"regions":' + record.regions_json + "}")
        # One per region: every stored region has a "label" key, and a JSON string value cannot hold `":`.
        return record.regions_json.count('"label":')

    def finish(self) -> None:
        head = {
            "format": "labelhub",
            "version": 1,
            "project": self.meta["project"],
            "export": self.meta["export"],
        }
        with self.zf.open("labelhub.json", "w", force_zip64=True) as out:
            out.write(json.dumps(head)[:-1].encode() + b',"items":[')
            self.items.copy_into(out)
            out.write(b"]}")
