"""SAM's prompt encoder + mask decoder as an ONNX graph, run by ONNX Runtime on CPU cores.

A click costs about half of what the PyTorch eager decoder costs on one core (docs/benchmarks.md),
and the same ``.onnx`` file is what a browser runs with onnxruntime-web. No Django.

The graph is ``segment_anything.utils.onnx.SamOnnxModel`` (SAM's own export wrapper, exported with
the TorchScript-based exporter, ``dynamo=False``: the dynamo exporter fails on its data-dependent
sizes), changed to return the low-resolution output only:

inputs
    ``image_embeddings`` float32 ``(1, 256, 64, 64)``; ``point_coords`` float32 ``(1, N, 2)`` in the
    1024 input frame (``ResizeLongestSide.apply_coords``), box corners appended as two points;
    ``point_labels`` float32 ``(1, N)``: 1 object, 0 background, 2/3 box corners, -1 padding (one
    ``(0, 0)`` point with label -1 when there is no box, as SAM's prompt encoder pads);
    ``mask_input`` float32 ``(1, 1, 256, 256)`` previous low-res logits; ``has_mask_input``
    float32 ``(1,)`` 1 or 0.
outputs
    ``low_res_masks`` float32 ``(1, 4, 256, 256)`` logits of all four mask tokens and
    ``iou_predictions`` float32 ``(1, 4)``; the caller picks token 0 (single mask) or the best of
    1-3 (multimask), exactly as ``MaskDecoder.forward`` slices them, and upscales with
    :func:`upscale_logits` (a 256x256 output instead of a full-size one saves ~10 ms a click).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .backend import LOW_RES, SAM_INPUT_SIZE

__all__ = [
    "ONNX_OPSET",
    "OnnxDecoder",
    "export_decoder",
    "onnx_decoder_path",
    "prompt_arrays",
    "upscale_logits",
]

ONNX_OPSET = 17
_GRAPH_VERSION = "v1"  # bump when the exported graph's inputs or outputs change
INPUT_NAMES = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"]
OUTPUT_NAMES = ["low_res_masks", "iou_predictions"]


def onnx_decoder_path(cache_dir: str | os.PathLike[str], model_type: str, checkpoint_sha256: str) -> Path:
    """Where the decoder of ``model_type`` + checkpoint is cached: one file per model and checkpoint."""
    tag = (
        checkpoint_sha256
        if re.fullmatch(r"[0-9a-f]{64}|random-seed-\d+", checkpoint_sha256)
        else ("x" + hashlib.sha256(checkpoint_sha256.encode()).hexdigest())
    )
    return Path(cache_dir) / f"sam-{model_type}-{tag[:24]}-decoder-{_GRAPH_VERSION}.onnx"


def _wrapper(model: Any) -> Any:
    import torch
    from segment_anything.utils.onnx import SamOnnxModel

    class _LowResDecoder(SamOnnxModel):
        @torch.no_grad()
        def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):  # type: ignore[override]
            sparse = self._embed_points(point_coords, point_labels)
            dense = self._embed_masks(mask_input, has_mask_input)
            return self.model.mask_decoder.predict_masks(
                image_embeddings=image_embeddings,
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
            )

    return _LowResDecoder(model, return_single_mask=False).eval()


def export_decoder(model: Any, path: str | os.PathLike[str]) -> Path:
    """Export ``model``'s (a ``segment_anything`` ``Sam``) prompt encoder + mask decoder to ``path``.

    Written to a temporary file next to ``path`` and renamed into place, so two processes exporting
    at once never leave a half-written file. Returns ``path``.
    """
    import copy

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Export from an fp32 CPU copy: the serving model may sit on a GPU or hold bf16 weights.
    cpu_model = copy.deepcopy(model).to("cpu", torch.float32)
    wrapper = _wrapper(cpu_model)
    emb = cpu_model.prompt_encoder.image_embedding_size
    dummy = (
        torch.randn(1, cpu_model.prompt_encoder.embed_dim, *emb),
        torch.randint(0, SAM_INPUT_SIZE, (1, 3, 2), dtype=torch.float),
        torch.tensor([[1.0, 0.0, -1.0]]),
        torch.zeros(1, 1, 4 * emb[0], 4 * emb[1]),
        torch.tensor([1.0]),
    )
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated, but it is the one that exports SamOnnxModel.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                wrapper,
                dummy,
                tmp,
                dynamo=False,
                export_params=True,
                opset_version=ONNX_OPSET,
                do_constant_folding=True,
                input_names=INPUT_NAMES,
                output_names=OUTPUT_NAMES,
                dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def prompt_arrays(
    coords: np.ndarray | None, labels: np.ndarray | None, box: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(point_coords (1, N, 2), point_labels (1, N))`` float32 graph inputs from prompts already
    in the 1024 input frame; the padding point when there is no box, as ``PromptEncoder`` does."""
    pts = [] if coords is None else [np.asarray(coords, np.float32).reshape(-1, 2)]
    lab = [] if labels is None else [np.asarray(labels, np.float32).reshape(-1)]
    if box is not None:
        pts.append(np.asarray(box, np.float32).reshape(2, 2))
        lab.append(np.array([2.0, 3.0], np.float32))
    else:
        pts.append(np.zeros((1, 2), np.float32))
        lab.append(np.array([-1.0], np.float32))
    return np.concatenate(pts)[None], np.concatenate(lab)[None]


def upscale_logits(
    low_res: np.ndarray, input_size: tuple[int, int], original_size: tuple[int, int]
) -> np.ndarray:
    """``(256, 256)`` logits -> ``(H, W)`` float32 logits, as ``Sam.postprocess_masks`` computes them:
    bilinear to 1024x1024, crop the un-padded ``input_size``, bilinear to ``original_size``
    (OpenCV's INTER_LINEAR samples like ``F.interpolate(mode="bilinear", align_corners=False)``)."""
    import cv2

    up = cv2.resize(
        np.ascontiguousarray(low_res, np.float32),
        (SAM_INPUT_SIZE, SAM_INPUT_SIZE),
        interpolation=cv2.INTER_LINEAR,
    )
    ih, iw = input_size
    h, w = original_size
    return cv2.resize(np.ascontiguousarray(up[:ih, :iw]), (w, h), interpolation=cv2.INTER_LINEAR)


class OnnxDecoder:
    """ONNX Runtime session of the exported decoder (CPU execution provider).

    Args:
        path: the ``.onnx`` file (:func:`export_decoder`).
        threads: ``intra_op_num_threads`` (1 = one core per click; clicks of several labelers then
            run side by side in an ``interactive`` worker's processes).
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def run(
        self,
        features: np.ndarray,
        point_coords: np.ndarray,
        point_labels: np.ndarray,
        mask_input: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode one prompt. ``features`` ``(256, 64, 64)`` (fp16 or fp32). Returns
        ``(low_res (4, 256, 256), iou (4,))`` float32, all four mask tokens."""
        feeds = {
            "image_embeddings": np.ascontiguousarray(features, dtype=np.float32)[None],
            "point_coords": point_coords.astype(np.float32),
            "point_labels": point_labels.astype(np.float32),
            "mask_input": (
                np.zeros((1, 1, LOW_RES, LOW_RES), np.float32)
                if mask_input is None
                else np.asarray(mask_input, np.float32).reshape(1, 1, LOW_RES, LOW_RES)
            ),
            "has_mask_input": np.array([0.0 if mask_input is None else 1.0], np.float32),
        }
        low_res, iou = self.session.run(OUTPUT_NAMES, feeds)
        return low_res[0], iou[0]
