"""Keep numba's on-disk kernel caches in step with the kernel sources.

numba keys each cached function on its own file's modification time and size only. The kernels
call one another across files (``_part_kernels`` inlines functions of ``_candidates`` and
``_winding_iou``, ``_levels`` calls ``_trace``'s heapsort, ...), so after an edit to one file the
cached machine code of the others still holds the old callee: the code runs, but not the code in the
tree. :func:`drop_stale_caches` keeps one digest of every kernel source (:data:`_SOURCES`: each file
of this package with an ``@njit(cache=True)``) beside the caches and, when it changes, deletes those
caches so that every kernel compiles again from the current sources (on first use, as on a fresh
checkout).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Every file of this package that holds a cached kernel (tests/workers/geometry/test_cache.py checks
# that none is missing); the first names the folder numba caches them in.
_SOURCES = (
    "_trace.py",
    "_sort.py",
    "_douglas_peucker.py",
    "_visvalingam.py",
    "_slope.py",
    "_candidates.py",
    "_winding_iou.py",
    "_levels.py",
    "_edge_grid.py",
    "_edge_contacts.py",
    "_outline_distance.py",
    "_part_kernels.py",
)
_STAMP = "labelhub-geometry-kernels.sha256"


def _cache_dirs() -> list[Path]:
    """Where numba puts this package's caches: ``__pycache__`` beside the sources, or, when
    ``NUMBA_CACHE_DIR`` is set, the one directory numba's own locator names for this folder under it
    (``geometry_<sha1 of the folder's path>``). The stamp lives in that same directory: stamped
    anywhere else (the root, as before), the next process found unstamped kernels and deleted what
    the previous one (or the image's pre-compile) had written."""
    root = os.environ.get("NUMBA_CACHE_DIR")
    if not root:
        return [_HERE / "__pycache__"]
    from numba.core.caching import UserProvidedCacheLocator

    return [Path(root) / UserProvidedCacheLocator.get_suitable_cache_subpath(str(_HERE / _SOURCES[0]))]


def drop_stale_caches() -> bool:
    """Delete the kernels' cache files when the sources changed since they were written; returns
    whether anything was deleted. A cache directory that cannot be written (a read-only install) is
    left alone."""
    digest = hashlib.sha256(b"".join((_HERE / name).read_bytes() for name in _SOURCES)).hexdigest()
    dropped = False
    for folder in _cache_dirs():
        stamp = folder / _STAMP
        try:
            if stamp.exists() and stamp.read_text().strip() == digest:
                continue
            if folder.is_dir():
                for name in _SOURCES:
                    for f in [
                        *folder.glob(f"{Path(name).stem}.*.nbi"),
                        *folder.glob(f"{Path(name).stem}.*.nbc"),
                    ]:
                        f.unlink(missing_ok=True)
                        dropped = True
            folder.mkdir(parents=True, exist_ok=True)
            # written whole or not at all: a process starting meanwhile never reads half a digest
            partial = folder / f"{_STAMP}.{os.getpid()}.tmp"
            partial.write_text(digest + "\n")
            os.replace(partial, stamp)
        except OSError:
            continue
    return dropped
