"""SAM's prompt encoder + mask decoder as an ONNX graph, run by ONNX Runtime on CPU cores.

A click costs about half of what the PyTorch eager decoder costs on one core (docs/benchmarks.md),
and the same ``.onnx`` file is what a browser runs with onnxruntime-web. No Django.

The graph is ``segment_anything.utils.onnx.SamOnnxModel`` (SAM's own export wrapper, exported with
the TorchScript-based exporter, ``dynamo=False``: the dynamo exporter fails on its data-dependent
sizes), with the mask decoder laid out for ONNX Runtime (:func:`_lean_class`: the same arithmetic,
outputs equal to ~1e-7, fewer transposes and adds) and the low-resolution output only:

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

import functools
import hashlib
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .interface import LOW_RES, SAM_INPUT_SIZE

__all__ = [
    "ONNX_OPSET",
    "OnnxDecoder",
    "export_decoder",
    "onnx_decoder_path",
    "prompt_arrays",
    "upscale_logits",
]

ONNX_OPSET = 17
_GRAPH_VERSION = "v2"  # bump when the exported graph's inputs or outputs change
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
    """SAM's ``SamOnnxModel`` with the mask decoder laid out for a lean graph (:func:`_lean_class`)."""
    return _lean_class()(model, return_single_mask=False).eval()


@functools.cache
def _lean_class() -> Any:
    """The export wrapper class (built on first use: torch and segment_anything load lazily)."""
    import math

    import torch
    import torch.nn.functional as F
    from segment_anything.utils.onnx import SamOnnxModel

    def _heads_mask(channels, heads, device):
        # (heads, channels): 1 where channel c belongs to head h
        d = channels // heads
        return (
            torch.arange(channels, device=device)[None, :] // d == torch.arange(heads, device=device)[:, None]
        ).float()

    def _proj_pe(lin, x, pe):
        """lin(x + pe) with the constant part lin(pe) folded into the GEMM's bias matrix."""
        return torch.addmm(F.linear(pe, lin.weight, lin.bias), x, lin.weight.t())

    def _attn_few_to_many(a, q, k, v, k_pe):
        """Few queries (tokens, (T, C)) attend to many keys (image, (N, C)); no head transposes of the N side."""
        H = a.num_heads
        qp = F.linear(q, a.q_proj.weight, a.q_proj.bias)  # (T, ci)
        kp = _proj_pe(a.k_proj, k, k_pe)  # (N, ci)
        vp = F.linear(v, a.v_proj.weight, a.v_proj.bias)  # (N, ci)
        ci = qp.shape[1]
        m = _heads_mask(ci, H, q.device)  # (H, ci)
        qbd = (qp.unsqueeze(0) * m.unsqueeze(1)).reshape(-1, ci) * (1.0 / math.sqrt(ci // H))  # (H*T, ci)
        attn = torch.softmax(qbd @ kp.t(), dim=-1)  # (H*T, N)
        out = (attn @ vp).reshape(H, -1, ci) * m.unsqueeze(1)  # (H, T, ci), only own head's block
        return F.linear(out.sum(0), a.out_proj.weight, a.out_proj.bias)

    def _attn_many_to_few(a, q, k, v, q_pe):
        """Many queries (image, (N, C)) attend to few keys (tokens, (T, C))."""
        H = a.num_heads
        qp = _proj_pe(a.q_proj, q, q_pe)  # (N, ci)
        kp = F.linear(k, a.k_proj.weight, a.k_proj.bias)  # (T, ci)
        vp = F.linear(v, a.v_proj.weight, a.v_proj.bias)  # (T, ci)
        ci = qp.shape[1]
        t = kp.shape[0]
        m = _heads_mask(ci, H, q.device)  # (H, ci)
        kbd = (kp.unsqueeze(0) * m.unsqueeze(1)).reshape(-1, ci) * (1.0 / math.sqrt(ci // H))  # (H*T, ci)
        logits = (qp @ kbd.t()).reshape(-1, H, t)  # (N, H, T)
        attn = torch.softmax(logits, dim=-1).reshape(-1, H * t)
        vbd = (vp.unsqueeze(0) * m.unsqueeze(1)).reshape(-1, ci)  # (H*T, ci)
        return F.linear(attn @ vbd, a.out_proj.weight, a.out_proj.bias)

    def _attn_small(a, q, k, v):
        H = a.num_heads
        qp = F.linear(q, a.q_proj.weight, a.q_proj.bias)
        kp = F.linear(k, a.k_proj.weight, a.k_proj.bias)
        vp = F.linear(v, a.v_proj.weight, a.v_proj.bias)
        t, ci = qp.shape
        d = ci // H
        qh = qp.reshape(t, H, d).transpose(0, 1)
        kh = kp.reshape(-1, H, d).transpose(0, 1)
        vh = vp.reshape(-1, H, d).transpose(0, 1)
        attn = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(d), dim=-1)
        out = (attn @ vh).transpose(0, 1).reshape(t, ci)
        return F.linear(out, a.out_proj.weight, a.out_proj.bias)

    class LeanDecoder(SamOnnxModel):
        """``MaskDecoder.predict_masks`` for one prompt, computed in the layout ONNX Runtime runs fastest.

        The same weights and the same arithmetic as the stock decoder (outputs agree to ~1e-7), with
        three changes of layout that the stock graph pays for on every click:

        - Batch 1 is squeezed so every projection is a 2-D GEMM with its bias fused (3-D MatMul + Add
          in the stock graph), and the positional-encoding term of ``proj(keys + pe)`` is a constant
          bias matrix of that GEMM (``proj(pe)``, folded at export) instead of a (4096, 256) add.
        - Attention between the few prompt tokens and the 4,096 image tokens never splits the image
          side into heads (a transpose of a (4096, 128) tensor per projection in the stock graph):
          the token side is laid out block-diagonally per head, which costs a few million extra
          multiply-adds against 130 million per projection.
        - The two transposed convolutions (kernel 2, stride 2) of the output upscaling are GEMMs on
          the token layout, with ``LayerNorm2d`` as a fused LayerNormalization over channels; one
          transpose at the end puts the sub-pixels in place.
        """

        @torch.no_grad()
        def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
            md = self.model.mask_decoder
            tr = md.transformer
            sparse = self._embed_points(point_coords, point_labels)
            dense = self._embed_masks(mask_input, has_mask_input)
            output_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)
            tokens = torch.cat((output_tokens, sparse[0]), dim=0)  # (T, C)
            c = image_embeddings.shape[1]
            keys = (image_embeddings + dense).reshape(c, -1).t()  # (N, C)
            key_pe = self.model.prompt_encoder.get_dense_pe().reshape(c, -1).t()
            query_pe = tokens
            queries = tokens
            for layer in tr.layers:
                if layer.skip_first_layer_pe:
                    queries = _attn_small(layer.self_attn, queries, queries, queries)
                else:
                    q = queries + query_pe
                    queries = queries + _attn_small(layer.self_attn, q, q, queries)
                queries = layer.norm1(queries)
                queries = layer.norm2(
                    queries
                    + _attn_few_to_many(
                        layer.cross_attn_token_to_image, queries + query_pe, keys, keys, key_pe
                    )
                )
                queries = layer.norm3(queries + layer.mlp(queries))
                keys = layer.norm4(
                    keys
                    + _attn_many_to_few(
                        layer.cross_attn_image_to_token, keys, queries + query_pe, queries, key_pe
                    )
                )
            queries = tr.norm_final_attn(
                queries
                + _attn_few_to_many(tr.final_attn_token_to_image, queries + query_pe, keys, keys, key_pe)
            )
            n = md.num_mask_tokens
            up = md.output_upscaling
            ct1, ln, act1, ct2, act2 = up[0], up[1], up[2], up[3], up[4]
            c1 = ct1.weight.shape[1]
            c2 = ct2.weight.shape[1]
            x = F.linear(
                keys, ct1.weight.permute(2, 3, 1, 0).reshape(4 * c1, -1), ct1.bias.repeat(4)
            ).reshape(-1, c1)
            x = act1(F.layer_norm(x, (c1,), ln.weight, ln.bias, ln.eps))
            x = act2(
                F.linear(x, ct2.weight.permute(2, 3, 1, 0).reshape(4 * c2, -1), ct2.bias.repeat(4)).reshape(
                    -1, c2
                )
            )
            hyper_in = torch.stack(
                [md.output_hypernetworks_mlps[i](queries[1 + i]) for i in range(n)], dim=0
            )  # (n, c2)
            hh, ww = image_embeddings.shape[2], image_embeddings.shape[3]
            m = (x @ hyper_in.t()).reshape(hh, ww, 2, 2, 2, 2, n).permute(6, 0, 2, 4, 1, 3, 5)
            masks = m.reshape(1, n, 4 * hh, 4 * ww)
            iou_pred = md.iou_prediction_head(queries[0:1])
            return masks, iou_pred

    return LeanDecoder


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
        self._last_features: tuple[np.ndarray, np.ndarray] | None = None

    def _features_fp32(self, features: np.ndarray) -> np.ndarray:
        """``(1, 256, 64, 64)`` float32 of ``features``. The fp16 -> fp32 copy (~2.5 ms, 5% of a click)
        is kept for the last embedding: a labeler's clicks on one image decode the same array."""
        if features.dtype == np.float32 and features.flags.c_contiguous:
            return features[None]
        last = self._last_features
        if last is not None and last[0] is features:
            return last[1]
        converted = np.ascontiguousarray(features, dtype=np.float32)[None]
        self._last_features = (features, converted)
        return converted

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
            "image_embeddings": self._features_fp32(features),
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
