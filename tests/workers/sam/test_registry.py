"""Checkpoint registry, hash verification, download refusal and backend selection."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from workers.sam import ClassicalBackend, get_backend, reset_backends
from workers.sam.registry import MODEL_SPECS, CheckpointError, download_checkpoint, load_sam, sha256_file

REPO = Path(__file__).resolve().parents[3]


def test_registry_table():
    assert set(MODEL_SPECS) == {"vit_h", "vit_l", "vit_b"}
    for mt, spec in MODEL_SPECS.items():
        assert spec.model_type == mt
        assert spec.url == f"https://dl.fbaipublicfiles.com/segment_anything/{spec.filename}"
        assert spec.filename.startswith(f"sam_{mt}_")
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert spec.builder == f"build_sam_{mt}"


def test_sha256_file_is_streamed_and_correct(tmp_path):
    p = tmp_path / "blob"
    data = b"x" * (3 * 2**20 + 17)  # several 1 MiB chunks
    p.write_bytes(data)
    assert sha256_file(p) == hashlib.sha256(data).hexdigest()


def test_wrong_checkpoint_hash_is_refused(tmp_path):
    fake = tmp_path / "sam_vit_b_01ec64.pth"
    fake.write_bytes(b"definitely not SAM weights")
    actual = hashlib.sha256(fake.read_bytes()).hexdigest()
    with pytest.raises(CheckpointError) as info:
        load_sam("vit_b", str(fake))
    msg = str(info.value)
    assert MODEL_SPECS["vit_b"].sha256 in msg and actual in msg and str(fake) in msg
    assert isinstance(info.value, ValueError)


def test_missing_checkpoint_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_sam("vit_h", str(tmp_path / "nope.pth"))


def test_unknown_model_and_no_weights():
    with pytest.raises(ValueError, match="unknown SAM model type"):
        load_sam("vit_x", None, seed=0)
    with pytest.raises(ValueError, match="seed"):
        load_sam("vit_b", None)


def test_download_refuses_wrong_hash_and_keeps_nothing(tmp_path):
    src = tmp_path / "served.pth"
    src.write_bytes(b"tampered checkpoint bytes" * 1000)
    dest = tmp_path / "ckpt"
    with pytest.raises(CheckpointError, match="wrong SHA-256") as info:
        download_checkpoint("vit_b", dest, url=src.as_uri())
    assert MODEL_SPECS["vit_b"].sha256 in str(info.value)
    assert list(dest.iterdir()) == []  # no partial or unverified file left behind
    # the same mechanics accept a file whose hash matches the expected one
    good = download_checkpoint("vit_b", dest, url=src.as_uri(), expected_sha256=sha256_file(src))
    assert good == dest / MODEL_SPECS["vit_b"].filename
    assert good.read_bytes() == src.read_bytes()


def test_get_backend_selection(tmp_path):
    reset_backends()
    b1 = get_backend(None, None)
    assert isinstance(b1, ClassicalBackend)
    assert get_backend("vit_h", "") is b1  # empty setting = no checkpoint, same singleton
    assert (b1.model_name, b1.checkpoint_sha256) == ("classical-grabcut", "none")
    fake = tmp_path / "x.pth"
    fake.write_bytes(b"bad")
    with pytest.raises(CheckpointError):
        get_backend("vit_b", str(fake))
    with pytest.raises(ValueError, match="model_type"):
        get_backend(None, str(fake))


def test_seeded_weights_record_their_seed(sam_loaded):
    assert sam_loaded.checkpoint_sha256 == "random-seed-0"
    assert sam_loaded.device == "cpu"


def test_import_does_not_pull_torch_or_django():
    code = "import sys, workers.sam; assert 'torch' not in sys.modules and 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
