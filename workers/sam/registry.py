"""Segment Anything checkpoint registry, verified loading and download.

Framework-free (no Django). ``torch`` and ``segment_anything`` are imported lazily inside
:func:`load_sam` so that importing this module costs nothing in the API process.

Public API
----------
``MODEL_SPECS: dict[str, ModelSpec]``
    ``"vit_h" | "vit_l" | "vit_b"`` -> builder name, official URL, file name, SHA-256.
``load_sam(model_type, checkpoint_path, *, device=None, verify=True, seed=None) -> LoadedSam``
    Build the real SAM architecture and load weights from a checkpoint whose SHA-256 is verified
    against the official value (:class:`CheckpointError` if missing or wrong). With
    ``checkpoint_path=None`` and ``seed=<n>`` the weights are seeded random weights (tests and
    speed benchmarks only; recorded as checkpoint hash ``"random-seed-<n>"``).
``download_checkpoint(model_type, dest_dir, *, url=None, expected_sha256=None) -> Path``
    Streamed download (urllib) to ``dest_dir/<official filename>``, verified before the file is
    moved into place; a wrong hash leaves nothing behind and raises :class:`CheckpointError`.
``sha256_file(path) -> str``
    Streamed SHA-256 (1 MiB chunks) of a file, lowercase hex.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MODEL_SPECS",
    "CheckpointError",
    "LoadedSam",
    "ModelSpec",
    "download_checkpoint",
    "load_sam",
    "resolve_device",
    "sha256_file",
    "verify_checkpoint",
]

_CHUNK = 1 << 20  # 1 MiB


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not match the official SHA-256."""


@dataclass(frozen=True)
class ModelSpec:
    """One official SAM checkpoint.

    Attributes:
        model_type: ``"vit_h"``, ``"vit_l"`` or ``"vit_b"``.
        builder: name of the builder in ``segment_anything.build_sam`` (``build_sam_vit_b`` ...).
        url: official download URL.
        filename: official file name (the 6 hex digits in it are NOT the SHA-256).
        sha256: SHA-256 of the official file, lowercase hex.
    """

    model_type: str
    builder: str
    url: str
    filename: str
    sha256: str


# Official checkpoints. URLs and file names: facebookresearch/segment-anything README,
# section "Model Checkpoints". The README does not print hashes; the SHA-256 values below are
# the ones published for these exact files by many independent projects (e.g. micro-sam's
# `_CHECKSUMS` table, Dockerfiles that run `sha256sum -c` on the downloaded files), all of
# which agree. A deployer who downloads the files computes the same values with `sha256sum`.
_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
MODEL_SPECS: dict[str, ModelSpec] = {
    "vit_h": ModelSpec(
        "vit_h",
        "build_sam_vit_h",
        _BASE_URL + "sam_vit_h_4b8939.pth",
        "sam_vit_h_4b8939.pth",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
    ),
    "vit_l": ModelSpec(
        "vit_l",
        "build_sam_vit_l",
        _BASE_URL + "sam_vit_l_0b3195.pth",
        "sam_vit_l_0b3195.pth",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
    ),
    "vit_b": ModelSpec(
        "vit_b",
        "build_sam_vit_b",
        _BASE_URL + "sam_vit_b_01ec64.pth",
        "sam_vit_b_01ec64.pth",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
    ),
}


def get_spec(model_type: str) -> ModelSpec:
    """Return the :class:`ModelSpec` for ``model_type``; ``ValueError`` if unknown."""
    try:
        return MODEL_SPECS[model_type]
    except KeyError:
        known = ", ".join(sorted(MODEL_SPECS))
        raise ValueError(f"unknown SAM model type {model_type!r}; expected one of: {known}") from None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Streamed SHA-256 of a file (1 MiB chunks). Returns lowercase hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checkpoint(model_type: str, checkpoint_path: str | os.PathLike[str]) -> str:
    """Check that ``checkpoint_path`` is the official ``model_type`` checkpoint.

    Returns:
        the file's SHA-256 (lowercase hex).
    Raises:
        CheckpointError: the file is missing/unreadable or its SHA-256 differs from the official
            value; the message names the path, the expected and the actual hash.
    """
    spec = get_spec(model_type)
    path = Path(checkpoint_path)
    if not path.is_file():
        raise CheckpointError(
            f"SAM {model_type} checkpoint not found: {path} "
            f"(expected the official {spec.filename}, sha256 {spec.sha256}, from {spec.url})"
        )
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise CheckpointError(f"cannot read SAM {model_type} checkpoint {path}: {exc}") from exc
    if actual != spec.sha256:
        raise CheckpointError(
            f"SAM {model_type} checkpoint {path} has the wrong SHA-256: "
            f"expected {spec.sha256} (official {spec.filename}), got {actual}. "
            "The file is corrupt, truncated or a different model; re-download it."
        )
    return actual


def resolve_device(device: str | None = None) -> str:
    """``device`` if given, else ``"cuda"`` when a CUDA device is available, else ``"cpu"``."""
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class LoadedSam:
    """A SAM model in eval mode on ``device`` plus the provenance recorded with predictions.

    Attributes:
        model: ``segment_anything.modeling.Sam`` instance (fp32 weights).
        model_type: ``"vit_b"`` | ``"vit_l"`` | ``"vit_h"``.
        checkpoint_sha256: verified SHA-256 of the checkpoint, ``"random-seed-<n>"`` for seeded
            random weights, or ``"unverified:<path>"`` when ``verify=False``.
        device: torch device string (``"cuda"`` / ``"cpu"``).
    """

    model: Any
    model_type: str
    checkpoint_sha256: str
    device: str


def load_sam(
    model_type: str,
    checkpoint_path: str | os.PathLike[str] | None,
    *,
    device: str | None = None,
    verify: bool = True,
    seed: int | None = None,
) -> LoadedSam:
    """Build SAM ``model_type`` and load its weights.

    Args:
        model_type: ``"vit_h"``, ``"vit_l"`` or ``"vit_b"``.
        checkpoint_path: path of the official ``.pth`` file; ``None`` requires ``seed``.
        device: torch device; default CUDA when available, else CPU.
        verify: compare the file's SHA-256 with the official value before loading (default).
        seed: with ``checkpoint_path=None``: build seeded random weights
            (``torch.manual_seed(seed)`` before construction; the zero-initialised relative-position
            tables and ``pos_embed`` are then drawn from N(0, 0.02^2)). For tests and speed
            benchmarks only; outputs of such a model carry no meaning.

    Returns:
        :class:`LoadedSam` (model in eval mode on ``device``).

    Raises:
        CheckpointError: missing file or SHA-256 mismatch.
        ValueError: unknown model type, or neither a checkpoint nor a seed.
    """
    spec = get_spec(model_type)
    if checkpoint_path is None and seed is None:
        raise ValueError("load_sam needs a checkpoint_path, or a seed for random test weights")
    if checkpoint_path is not None:
        sha = verify_checkpoint(model_type, checkpoint_path) if verify else None
        if sha is None:
            if not Path(checkpoint_path).is_file():
                raise CheckpointError(f"SAM {model_type} checkpoint not found: {checkpoint_path}")
            sha = f"unverified:{checkpoint_path}"
    else:
        sha = f"random-seed-{seed}"

    import importlib

    import torch

    builder = getattr(importlib.import_module("segment_anything.build_sam"), spec.builder)
    dev = resolve_device(device)
    if checkpoint_path is None:
        torch.manual_seed(int(seed))  # type: ignore[arg-type]
        model = builder(checkpoint=None)
        # The builder zero-initialises the relative-position tables (and pos_embed); fill them
        # from the same seeded generator so the rel-pos attention path is actually exercised.
        with torch.no_grad():
            for name, param in model.image_encoder.named_parameters():
                if name.endswith(("rel_pos_h", "rel_pos_w", "pos_embed")):
                    param.normal_(0.0, 0.02)
    else:
        model = builder(checkpoint=None)
        state = torch.load(str(checkpoint_path), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    model.to(dev).eval()
    return LoadedSam(model=model, model_type=model_type, checkpoint_sha256=sha, device=dev)


def download_checkpoint(
    model_type: str,
    dest_dir: str | os.PathLike[str],
    *,
    url: str | None = None,
    expected_sha256: str | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Download the official checkpoint for ``model_type`` into ``dest_dir`` and verify it.

    The file is streamed to a temporary file in ``dest_dir`` while hashing; only when the SHA-256
    matches is it renamed to ``dest_dir/<official filename>``. An existing verified file is reused.

    Args:
        model_type: ``"vit_h"``, ``"vit_l"`` or ``"vit_b"``.
        dest_dir: target directory (created if missing).
        url: override the official URL (mirrors; tests serve a local ``file://`` URL).
        expected_sha256: override the expected hash (default: the official value).
        timeout_s: socket timeout in seconds.

    Returns:
        path of the verified checkpoint.

    Raises:
        CheckpointError: the downloaded bytes do not have the expected SHA-256 (nothing is kept).
    """
    spec = get_spec(model_type)
    expected = (expected_sha256 or spec.sha256).lower()
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / spec.filename
    if target.is_file() and sha256_file(target) == expected:
        return target
    src = url or spec.url
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=spec.filename + ".", suffix=".part", dir=dest)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(src, timeout=timeout_s) as resp:  # noqa: S310
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != expected:
            raise CheckpointError(
                f"downloaded SAM {model_type} checkpoint from {src} has the wrong SHA-256: "
                f"expected {expected}, got {actual}; the file was discarded"
            )
        shutil.move(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target
