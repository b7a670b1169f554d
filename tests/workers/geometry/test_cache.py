"""numba's kernel caches are dropped when the kernel sources change (see workers/geometry/_cache.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from workers.geometry import _cache

ROOT = Path(__file__).resolve().parents[3]


def test_caches_are_dropped_once_per_change_of_the_kernel_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    (folder,) = _cache._cache_dirs()
    assert folder.parent == tmp_path and folder.name.startswith("geometry_")
    folder.mkdir(parents=True)
    cached = [
        folder / "_winding_iou.winding_iou-631.py311.nbi",
        folder / "_sort.sort_indices-40.py311.1.nbc",
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


KERNEL_RUN = """
import json, sys
import numpy as np
from workers.geometry import _sort
idx = np.arange(4)
_sort.sort_indices(idx, np.array([3.0, 1.0, 2.0, 0.5]), False)  # sorts idx in place
stats = _sort.sort_indices.stats
print(json.dumps({"order": [int(i) for i in idx], "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def test_every_cached_kernel_source_is_stamped():
    """A file of workers/geometry with a cached kernel that _cache._SOURCES does not name would keep
    stale machine code of its callees in other files (and theirs of it) after an edit."""
    folder = ROOT / "workers" / "geometry"
    cached = {p.name for p in folder.glob("*.py") if re.search(r"^@njit\(cache=True", p.read_text(), re.M)}
    assert cached and cached == set(_cache._SOURCES)


def _kernel_files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.nb[ic]")}


def _run(root: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", KERNEL_RUN], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_keeps_the_kernels_the_first_compiled(tmp_path):
    """Two processes importing workers.geometry with NUMBA_CACHE_DIR set: the first compiles and stamps
    its kernels, the second loads them from the cache and deletes nothing (one set of compiled kernels)."""
    first = _run(tmp_path)
    assert first["misses"] >= 1 and sorted(first["order"]) == [0, 1, 2, 3]
    compiled = _kernel_files(tmp_path)
    assert compiled and all(Path(name).parent.name.startswith("geometry_") for name in compiled)
    second = _run(tmp_path)
    assert second["order"] == first["order"]
    assert second["hits"] >= 1 and second["misses"] == 0  # loaded, not compiled again
    assert _kernel_files(tmp_path) == compiled  # the same files, untouched
