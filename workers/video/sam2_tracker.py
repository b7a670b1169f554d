"""SAM 2 propagation with bounded memory.

SAM 2's own video predictor (`SAM2VideoPredictor.init_state`) loads every frame of the video into one
tensor and keeps every frame's output in its state, so memory grows with the video (sam2 issue #196).
Here the real SAM 2 model (`SAM2Base.track_step`, the code path the predictor runs per frame) is driven
one frame at a time, as CVAT's tracker does: the state holds the conditioning frame (the keyframe's mask,
given as SAM 2's mask input) plus the most recent non-conditioning outputs, as many as the model reads
(`num_maskmem - 1` memories, `max_obj_ptrs_in_encoder - 1` object pointers); older outputs are dropped
as the loop moves on, and each frame's image is encoded when it arrives and then let go. Memory is flat
in the number of frames (benchmarks/video_propagation.py measures 100 vs 1,000 frames).

Checkpoints: the official `.pt` files from a configured path, verified against a configured SHA-256
(`Sam2Checkpoint`); without one, tests and latency benchmarks build the real architecture with seeded
random weights (outputs carry no meaning, and their quality is never reported).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CONFIGS = {
    "hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


class Sam2CheckpointError(ValueError):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class LoadedSam2:
    model: Any  # sam2's SAM2Base (its video predictor's model): torch, imported lazily
    variant: str
    checkpoint_sha256: str  # verified hash, or "random-seed-<n>"
    device: str


def load_sam2(
    variant: str = "hiera_t",
    checkpoint: str | None = None,
    *,
    expected_sha256: str | None = None,
    seed: int | None = None,
    device: str = "cpu",
    image_size: int | None = None,
) -> LoadedSam2:
    """Build SAM 2.1 `variant` with the video predictor's post-processing settings. With `checkpoint`,
    its SHA-256 must equal `expected_sha256` (Sam2CheckpointError otherwise, before torch reads a byte);
    without, `seed` gives seeded random weights. `image_size` overrides the model's input side (1024)
    for latency tests only."""
    import torch
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    if variant not in CONFIGS:
        raise ValueError(f"unknown SAM 2 variant {variant!r}; one of {sorted(CONFIGS)}")
    if checkpoint:
        path = Path(checkpoint)
        if not path.is_file():
            raise Sam2CheckpointError(f"SAM 2 checkpoint not found: {path}")
        if not expected_sha256:
            raise Sam2CheckpointError("a SAM 2 checkpoint needs its expected SHA-256 configured")
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise Sam2CheckpointError(
                f"SAM 2 checkpoint {path} has SHA-256 {actual}; expected {expected_sha256}."
            )
        provenance = actual
    elif seed is None:
        raise ValueError("load_sam2 needs a checkpoint, or a seed for random test weights")
    else:
        provenance = f"random-seed-{seed}"
    overrides = [
        "++model._target_=sam2.modeling.sam2_base.SAM2Base",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
        "++model.binarize_mask_from_pts_for_mem_enc=true",
    ]
    if image_size:
        overrides.append(f"++model.image_size={int(image_size)}")
    if not GlobalHydra.instance().is_initialized():
        initialize_config_module("sam2", version_base="1.2")
    cfg = compose(config_name=CONFIGS[variant], overrides=overrides)
    OmegaConf.resolve(cfg)
    if seed is not None and not checkpoint:
        torch.manual_seed(int(seed))
    model = instantiate(cfg.model, _recursive_=True)
    if checkpoint:
        state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)["model"]
        model.load_state_dict(state)
    model = model.to(device).eval()
    return LoadedSam2(model, variant, provenance, device)


class Sam2Propagator:
    """The propagator interface (workers.video.propagate) over SAM 2, bounded memory."""

    model_name = "sam2.1"

    def __init__(self, loaded: LoadedSam2, *, reverse: bool = False):
        self.loaded = loaded
        self.model = loaded.model
        self.model_version = f"{loaded.variant} {loaded.checkpoint_sha256}"
        self.reverse = reverse
        self.keep = max(self.model.num_maskmem, self.model.max_obj_ptrs_in_encoder)
        self.output: dict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        self.index = 0
        self.size: tuple[int, int] = (0, 0)

    def _features(self, frame: np.ndarray):
        import cv2
        import torch

        side = self.model.image_size
        self.size = frame.shape[:2]
        img = cv2.resize(frame, (side, side), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        img = (img - MEAN) / STD
        tensor = torch.from_numpy(img).permute(2, 0, 1)[None].to(self.loaded.device)
        backbone = self.model.forward_image(tensor)
        _, vision_feats, vision_pos, feat_sizes = self.model._prepare_backbone_features(backbone)
        return vision_feats, vision_pos, feat_sizes

    def _mask_out(self, out: dict) -> np.ndarray:
        import torch

        logits = out["pred_masks_high_res"]
        h, w = self.size
        full = torch.nn.functional.interpolate(
            logits.float(), size=(h, w), mode="bilinear", align_corners=False
        )
        return (full[0, 0] > 0).cpu().numpy()

    def _compact(self, out: dict) -> dict:
        # what later frames read: the memory features, their position encoding, the object pointer
        return {
            "maskmem_features": out["maskmem_features"],
            "maskmem_pos_enc": out["maskmem_pos_enc"],
            "obj_ptr": out["obj_ptr"],
            "object_score_logits": out.get("object_score_logits"),
            "pred_masks": out["pred_masks"],
        }

    @property
    def seed_model(self) -> dict:
        return {"name": self.model_name, "version": self.model_version}

    def _condition(self, frame: np.ndarray, *, mask_inputs=None, point_inputs=None) -> dict:
        """Run the conditioning frame (index 0) through `track_step` with a mask or points, keep what
        later frames read, return the model's output."""
        import torch

        self.output = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        self.index = 0
        with torch.inference_mode():
            feats, pos, sizes = self._features(frame)
            out = self.model.track_step(
                frame_idx=0,
                is_init_cond_frame=True,
                current_vision_feats=feats,
                current_vision_pos_embeds=pos,
                feat_sizes=sizes,
                point_inputs=point_inputs,
                mask_inputs=mask_inputs,
                output_dict=self.output,
                num_frames=1 << 20,
                track_in_reverse=False,
                run_mem_encoder=True,
            )
        self.output["cond_frame_outputs"][0] = self._compact(out)
        return out

    def start(self, frame: np.ndarray, mask: np.ndarray) -> None:
        import torch

        side = self.model.image_size
        m = torch.from_numpy(mask.astype(np.float32))[None, None].to(self.loaded.device)
        m = torch.nn.functional.interpolate(m, size=(side, side), mode="bilinear", align_corners=False) >= 0.5
        self._condition(frame, mask_inputs=m.float())

    def start_prompt(self, frame: np.ndarray, *, points=None, point_labels=None, box=None) -> np.ndarray:
        """Seed from points (labels 1 positive, 0 negative) and/or a box in the frame's pixels, as SAM 2's
        video predictor does (`add_new_points_or_box`): the box becomes two corner points labelled 2
        and 3 placed before the clicks, coordinates scaled to the model's input side, and the frame is a
        conditioning frame whose mask the memory encoder binarizes (`binarize_mask_from_pts_for_mem_enc`).
        Returns the seed mask at the frame's size."""
        import torch

        h, w = frame.shape[:2]
        coords = np.zeros((0, 2), np.float32)
        labels = np.zeros((0,), np.int32)
        if box is not None:
            coords = np.asarray(box, np.float32).reshape(2, 2)
            labels = np.array([2, 3], np.int32)
        if points is not None:
            coords = np.concatenate([coords, np.asarray(points, np.float32).reshape(-1, 2)])
            labels = np.concatenate([labels, np.asarray(point_labels, np.int32).reshape(-1)])
        if not len(coords):
            raise ValueError("a prompt needs points or a box")
        side = self.model.image_size
        scaled = coords / np.array([w, h], np.float32) * side
        point_inputs = {
            "point_coords": torch.from_numpy(scaled)[None].to(self.loaded.device),
            "point_labels": torch.from_numpy(labels)[None].to(self.loaded.device),
        }
        out = self._condition(frame, point_inputs=point_inputs)
        with torch.inference_mode():
            return self._mask_out(out)

    def step(self, frame: np.ndarray) -> np.ndarray:
        """The next frame in the order of travel. Frame indices inside the model count from the keyframe
        (0) outwards, so forward and backward runs use the same (forward) temporal encodings."""
        import torch

        self.index += 1
        with torch.inference_mode():
            feats, pos, sizes = self._features(frame)
            out = self.model.track_step(
                frame_idx=self.index,
                is_init_cond_frame=False,
                current_vision_feats=feats,
                current_vision_pos_embeds=pos,
                feat_sizes=sizes,
                point_inputs=None,
                mask_inputs=None,
                output_dict=self.output,
                num_frames=1 << 20,
                track_in_reverse=False,
                run_mem_encoder=True,
            )
            mask = self._mask_out(out)
        recent = self.output["non_cond_frame_outputs"]
        recent[self.index] = self._compact(out)
        for old in [k for k in recent if k <= self.index - self.keep]:
            del recent[old]
        return mask

    def state_frames(self) -> int:
        """How many frame outputs the state holds (bounded by 1 + keep)."""
        return len(self.output["cond_frame_outputs"]) + len(self.output["non_cond_frame_outputs"])
