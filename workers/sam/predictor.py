"""The SAM predictor: batched image encoder, cached-embedding prompt decoder (the everything mode is
:mod:`workers.sam.automatic`, the fused attention :mod:`workers.sam.attention`).

``torch`` / ``segment_anything`` are imported lazily (inside functions) so importing
``workers.sam`` does not pull them into the API process.

Paths
-----
* ``optimized=False`` ("stock"): the unmodified ``segment_anything`` fp32 code path (PIL resize,
  manual attention matmul with the dense relative-position bias), kept for comparisons.
* ``optimized=True``: the encoder runs on a private copy of SAM's image encoder whose Attention
  modules use :func:`sdpa_attention_forward`: ``scaled_dot_product_attention`` with the decomposed
  relative-position bias folded into the query and key (no ``(B, heads, L, L)`` bias tensor, so a
  fused kernel runs), relative-position indices built once on the model's device (no host sync).
  Preprocessing (resize, normalisation, padding) runs on the device from pinned host memory with
  non-blocking copies. ``dtype="bf16"`` (default on CUDA) casts that copy's weights to bf16.
  ``compile=True`` wraps it in ``torch.compile`` with fixed shapes: every batch is padded to
  ``max_batch`` images, and :meth:`SamBackend.warm_up` compiles before the first task.
* ``decoder="onnx"``: clicks (:meth:`SamBackend.predict`) are decoded by ONNX Runtime on CPU cores
  (:mod:`workers.sam.onnx_decoder`, the graph cached per model and checkpoint); ``"torch"``: by
  PyTorch on the model's device (the GPU worker's choice).

The stock model object is never modified, so a stock and an optimized backend may share one
:class:`LoadedSam` (the agreement tests and benchmarks do exactly that to guarantee identical
weights).

Embeddings hold the encoder output as fp16 ``(256, 64, 64)`` (2 MiB) plus original/input sizes;
``predict`` only runs the prompt encoder and mask decoder (fp32) on them. ``encoder_calls`` and
``images_encoded`` count image-encoder invocations (tests assert ``predict`` never adds to them).
"""

from __future__ import annotations

import copy
import os
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np

from .attention import attention_modules, sdpa_attention_forward
from .automatic import automatic_masks
from .interface import (
    LOW_RES,
    AutoMask,
    Embedding,
    PromptResult,
    candidate_index,
    check_embedding,
    input_size_for,
    validate_images,
    validate_prompt,
)
from .registry import LoadedSam, load_sam

__all__ = ["SamBackend"]


class SamBackend:
    """SAM implementation of ``SegmentationBackend``.

    Args:
        loaded: model + provenance from :func:`workers.sam.registry.load_sam`.
        optimized: fused attention, on-device preprocessing (+ bf16 weights on CUDA); ``False`` =
            stock fp32 path.
        compile: wrap the optimized image encoder in ``torch.compile`` (fixed batch shape).
        dtype: ``"fp32"`` or ``"bf16"`` encoder weights; default bf16 on CUDA when optimized,
            else fp32.
        max_batch: images per encoder forward in :meth:`embed` (``LABELHUB_SAM_BATCH_SIZE``).
        decoder: ``"torch"`` (default) or ``"onnx"`` (ONNX Runtime on the CPU for :meth:`predict`).
        onnx_dir: folder caching the exported decoder (default ``$TMPDIR/labelhub-onnx``).
        onnx_threads: ONNX Runtime intra-op threads per click.

    Attributes:
        model_name: ``"sam-<model_type>"``; checkpoint_sha256: from ``loaded``.
        encoder_calls / images_encoded: counters of image-encoder forwards / images.
    """

    crop_layers_supported = True  # automatic(crop_n_layers=..., source=...)

    def __init__(
        self,
        loaded: LoadedSam,
        *,
        optimized: bool = True,
        compile: bool = False,
        dtype: str | None = None,
        max_batch: int = 4,
        decoder: str = "torch",
        onnx_dir: str | os.PathLike[str] | None = None,
        onnx_threads: int = 1,
    ) -> None:
        import torch
        from segment_anything.utils.transforms import ResizeLongestSide

        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        self.model_type = loaded.model_type
        self.model_name = f"sam-{loaded.model_type}"
        self.checkpoint_sha256 = loaded.checkpoint_sha256
        self.optimized = optimized
        self.on_cuda = str(self.device).startswith("cuda")
        if dtype is None:
            dtype = "bf16" if (optimized and self.on_cuda) else "fp32"
        if dtype not in ("fp32", "bf16"):
            raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
        if dtype == "bf16" and not optimized:
            raise ValueError("the stock path (optimized=False) is fp32 only")
        if decoder not in ("torch", "onnx"):
            raise ValueError(f"decoder must be 'torch' or 'onnx', got {decoder!r}")
        self.dtype = dtype
        self.max_batch = max(1, int(max_batch))
        self.transform = ResizeLongestSide(self.model.image_encoder.img_size)
        self.encoder_calls = 0
        self.images_encoded = 0
        self._lock = threading.Lock()
        self._encoder: Any = self.model.image_encoder
        self.compiled = False
        if optimized:
            # A private copy: its Attention modules are patched for good and it may hold bf16 weights,
            # while the shared stock model stays as segment_anything made it.
            encoder = copy.deepcopy(self.model.image_encoder)
            for m in attention_modules(encoder):
                m.forward = types.MethodType(sdpa_attention_forward, m)
            if dtype == "bf16":
                encoder.to(torch.bfloat16)
            self._encoder = encoder
            if compile:
                self._encoder = torch.compile(encoder, dynamic=False)
                self.compiled = True
        self._enc_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
        img = self.model.image_encoder.img_size
        self._mean = self.model.pixel_mean.to(self.device).view(1, 3, 1, 1)
        self._std = self.model.pixel_std.to(self.device).view(1, 3, 1, 1)
        self._img_size = img
        self.decoder = decoder
        self.onnx_dir = (
            Path(onnx_dir) if onnx_dir else Path(os.environ.get("TMPDIR", "/tmp")) / "labelhub-onnx"
        )
        self.onnx_threads = onnx_threads
        self._onnx: Any = None
        self._onnx_lock = threading.Lock()
        self._last_features: tuple[Any, Any] | None = None

    @classmethod
    def from_checkpoint(
        cls,
        model_type: str,
        checkpoint_path: str | None,
        *,
        device: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> SamBackend:
        """``load_sam(...)`` (SHA-256 verified) then ``SamBackend(loaded, **kwargs)``."""
        return cls(load_sam(model_type, checkpoint_path, device=device, seed=seed), **kwargs)

    # ------------------------------------------------------------------------------------------
    def onnx_decoder_path(self) -> Path:
        """The exported decoder (``.onnx``) of this model and checkpoint, exported on first use."""
        from .onnx_decoder import export_decoder, onnx_decoder_path

        path = onnx_decoder_path(self.onnx_dir, self.model_type, self.checkpoint_sha256)
        if not path.is_file():
            with self._onnx_lock:
                if not path.is_file():
                    export_decoder(self.model, path)
        return path

    def onnx_decoder(self) -> Any:
        """The ONNX Runtime session (:class:`workers.sam.onnx_decoder.OnnxDecoder`), made once."""
        from .onnx_decoder import OnnxDecoder

        if self._onnx is None:
            path = self.onnx_decoder_path()
            with self._onnx_lock:
                if self._onnx is None:
                    self._onnx = OnnxDecoder(path, threads=self.onnx_threads)
        return self._onnx

    def warm_up(self) -> None:
        """Compile before the first task (one padded ``max_batch`` forward) and load the ONNX decoder,
        so no task pays for either. Called when a worker process starts."""
        if self.compiled:
            blank = np.zeros((self._img_size, self._img_size, 3), np.uint8)
            self.encode_batch([blank])
        if self.decoder == "onnx":
            self.onnx_decoder()

    # ------------------------------------------------------------------------------------------
    def _preprocess(self, image: np.ndarray) -> tuple[Any, tuple[int, int]]:
        """Stock path: PIL resize on the host, then normalize and pad. ``(3, S, S)`` + input size."""
        import torch

        resized = self.transform.apply_image(image)
        t = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()
        t = self.model.preprocess(t[None].float())[0]
        return t, (int(resized.shape[0]), int(resized.shape[1]))

    def _batch_on_device(self, images: list[np.ndarray], size: int) -> Any:
        """Optimized path: ``(size, 3, S, S)`` encoder input made on the device. Each uint8 image is
        copied from pinned memory without blocking, resized there (bilinear, antialiased, rounded to
        uint8 levels like the stock PIL resize), normalized and padded; rows past ``len(images)``
        stay zero (the fixed batch shape of a compiled encoder)."""
        import torch
        import torch.nn.functional as F

        s = self._img_size
        batch = torch.zeros(size, 3, s, s, device=self.device, dtype=torch.float32)
        for i, im in enumerate(images):
            host = torch.from_numpy(np.require(im, requirements=["C", "W"]))
            if self.on_cuda:
                host = host.pin_memory()
            t = host.to(self.device, non_blocking=True).permute(2, 0, 1)[None].float()
            h, w = input_size_for(im.shape[:2], s)
            t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
            t = (t.round().clamp(0, 255) - self._mean) / self._std
            batch[i, :, :h, :w] = t[0]
        return batch

    def encode_batch(self, images: list[np.ndarray]) -> Any:
        """Run the image encoder on one batch. Returns fp32 ``(B, 256, 64, 64)`` torch features."""
        import torch

        if self.optimized:
            size = self.max_batch if self.compiled else len(images)
            with torch.inference_mode():
                batch = self._batch_on_device(images, size).to(self._enc_dtype)
        else:
            tensors, _ = zip(*(self._preprocess(im) for im in images), strict=True)
            batch = torch.stack(tensors)
        with self._lock, torch.inference_mode():
            feats = self._encoder(batch)[: len(images)]
            self.encoder_calls += 1
            self.images_encoded += len(images)
        return feats.float()

    def embed(self, images: list[np.ndarray]) -> list[Embedding]:
        """Batched embedding (chunks of ``max_batch``). Input: RGB uint8 ``(H, W, 3)`` arrays."""
        import torch

        images = validate_images(images)
        out: list[Embedding] = []
        for i in range(0, len(images), self.max_batch):
            chunk = images[i : i + self.max_batch]
            # fp16 on the device: half the bytes cross to the host.
            feats = self.encode_batch(chunk).to(torch.float16).cpu().numpy()
            for im, f in zip(chunk, feats, strict=True):
                h, w = im.shape[:2]
                out.append(
                    Embedding(
                        model_name=self.model_name,
                        checkpoint_sha256=self.checkpoint_sha256,
                        original_size=(h, w),
                        input_size=self.transform.get_preprocess_shape(h, w, self.transform.target_length),
                        data=f,
                    )
                )
        return out

    def features(self, embedding: Embedding) -> Any:
        """``(1, 256, 64, 64)`` fp32 features on the device; the last embedding's stay there, so the
        clicks that follow on the same image upload nothing."""
        import torch

        last = self._last_features
        if last is not None and last[0] is embedding.data:
            return last[1]
        feats = torch.as_tensor(np.asarray(embedding.data, dtype=np.float32), device=self.device)[None]
        self._last_features = (embedding.data, feats)
        return feats

    def decode(
        self,
        features: Any,
        embedding: Embedding,
        coords: Any,
        labels: Any,
        boxes: Any,
        mask_input: Any,
        multimask: bool,
    ) -> tuple[Any, Any]:
        """Prompt encoder + mask decoder. Returns (low-res logits (B,C,256,256), iou (B,C))."""
        points = (coords, labels) if coords is not None else None
        sparse, dense = self.model.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
        low_res, iou = self.model.mask_decoder(
            image_embeddings=features,
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
        return low_res, iou

    def upscale(self, low_res: Any, embedding: Embedding) -> Any:
        """Low-res logits (B,C,256,256) -> logits at the original size (B,C,H,W)."""
        return self.model.postprocess_masks(low_res, embedding.input_size, embedding.original_size)

    def predict(
        self,
        embedding: Embedding,
        *,
        points: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask_output: bool | None = None,
        candidate: int = 0,
    ) -> PromptResult:
        """Mask for one prompt from a cached embedding (prompt encoder + mask decoder only).

        ``multimask_output=None`` -> SAM's recommendation: three candidate masks (best predicted
        IoU returned) for a single click without box/mask_input, one mask otherwise. ``candidate``
        k returns the (k+1)-th best of the three instead (the labeler cycling SAM's candidates).
        """
        import torch

        check_embedding(embedding, self.model_name, self.checkpoint_sha256)
        p = validate_prompt(
            embedding.original_size,
            points=points,
            point_labels=point_labels,
            box=box,
            mask_input=mask_input,
        )
        if multimask_output is None:
            multimask_output = (
                p.points is not None and len(p.points) == 1 and p.box is None and p.mask_input is None
            )
        if self.decoder == "onnx":
            return self._predict_onnx(embedding, p, multimask_output, candidate)
        dev = self.device
        coords = labels = boxes = mi = None
        if p.points is not None:
            tc = self.transform.apply_coords(p.points, embedding.original_size)
            coords = torch.as_tensor(tc, dtype=torch.float, device=dev)[None]
            labels = torch.as_tensor(p.point_labels, dtype=torch.int, device=dev)[None]
        if p.box is not None:
            tb = self.transform.apply_boxes(p.box[None], embedding.original_size)
            boxes = torch.as_tensor(tb, dtype=torch.float, device=dev)
        if p.mask_input is not None:
            mi = torch.as_tensor(p.mask_input, dtype=torch.float, device=dev)[None]
        with torch.inference_mode():
            low_res, iou = self.decode(
                self.features(embedding), embedding, coords, labels, boxes, mi, multimask_output
            )
            scores = iou[0].float().cpu().numpy()
            best = candidate_index(scores, candidate)
            chosen = low_res[:, best : best + 1]
            mask = self.upscale(chosen, embedding)[0, 0] > self.model.mask_threshold
        return PromptResult(
            mask=mask.cpu().numpy(),
            score=float(scores[best]),
            low_res_logits=chosen[0].float().cpu().numpy().reshape(1, LOW_RES, LOW_RES),
            model_name=self.model_name,
            checkpoint_sha256=self.checkpoint_sha256,
            candidates=len(scores),
            candidate=int(candidate),
        )

    def _predict_onnx(
        self, embedding: Embedding, p: Any, multimask: bool, candidate: int = 0
    ) -> PromptResult:
        """:meth:`predict` through ONNX Runtime: the same prompt encoding and token choice as
        ``MaskDecoder.forward`` (token 0 for one mask, the best of tokens 1-3 for multimask)."""
        from .onnx_decoder import prompt_arrays, upscale_logits

        size = embedding.original_size
        coords = None if p.points is None else self.transform.apply_coords(p.points, size)
        box = None if p.box is None else self.transform.apply_boxes(p.box[None], size)
        pc, pl = prompt_arrays(coords, p.point_labels, box)
        low_res, iou = self.onnx_decoder().run(embedding.data, pc, pl, p.mask_input)
        tokens = [1, 2, 3] if multimask else [0]
        best = tokens[candidate_index(iou[tokens], candidate)]
        logits = upscale_logits(low_res[best], embedding.input_size, size)
        return PromptResult(
            mask=logits > self.model.mask_threshold,
            score=float(iou[best]),
            low_res_logits=low_res[best].reshape(1, LOW_RES, LOW_RES),
            model_name=self.model_name,
            checkpoint_sha256=self.checkpoint_sha256,
            candidates=len(tokens),
            candidate=int(candidate),
        )

    def automatic(self, image: np.ndarray | Embedding, **options: Any) -> list[AutoMask]:
        """ "Segment everything": :func:`workers.sam.automatic.automatic_masks` with this backend
        (its keyword options: grid, thresholds, crop layers, ``source``)."""
        return automatic_masks(self, image, **options)
