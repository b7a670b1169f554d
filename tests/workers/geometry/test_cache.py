"""numba's kernel caches are dropped when the kernel sources change (see workers/geometry/_cache.py)."""

from __future__ import annotations

from workers.geometry import _cache


def test_caches_are_dropped_once_per_change_of_the_kernel_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    folder = tmp_path / "workers" / "geometry"
    folder.mkdir(parents=True)
    cached = [
        folder / "_kernels.winding_iou-631.py311.nbi",
        folder / "_part_kernels.bisect_part-302.py311.1.nbc",
    ]
    other = folder / "unrelated.f-1.py311.nbi"
    for f in [*cached, other]:
        f.write_bytes(b"x")

    assert _cache.drop_stale_caches()  # no stamp yet: the caches may predate the sources
    assert not any(f.exists() for f in cached) and other.exists()
    stamp = folder / _cache._STAMP
    assert len(stamp.read_text().strip()) == 64

    for f in cached:  # compiled again from these sources: kept from now on
        f.write_bytes(b"y")
    assert not _cache.drop_stale_caches()
    assert all(f.exists() for f in cached)

    stamp.write_text("0" * 64 + "\n")  # the sources changed since
    assert _cache.drop_stale_caches()
    assert not any(f.exists() for f in cached) and other.exists()
