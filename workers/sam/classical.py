"""Classical (checkpoint-free) backend with the ``SegmentationBackend`` interface.

Serves when no SAM checkpoint is configured. OpenCV only (``cv2`` imported lazily).

* ``embed``: nothing to precompute; the :class:`Embedding` carries the RGB image (PNG when
  serialized) so ``predict`` needs only the embedding, exactly like SAM.
* ``predict``: OpenCV GrabCut (``cv2.grabCut``, mask initialisation) on a crop around the prompt.
  The box (or, with points only, a rectangle around the positive clicks and any previous mask,
  enlarged by a margin) is "probably foreground", outside it is background; positive clicks are
  sure-foreground disks, negative clicks sure-background disks; ``mask_input`` (previous low-res
  logits) initialises probable FG/BG inside the rectangle. GrabCut runs on the crop downscaled
  to a long side of at most ``work_size`` (256) px; the mask is upsampled bilinearly (threshold
  1/2) to the original size (a click costs ~0.1 s instead of seconds). The result keeps the connected
  components that contain positive clicks (all components when there are none). A follow-up
  click (with ``mask_input``) obeys :meth:`ClassicalBackend._guard`: a positive click never
  removes anything and adds only within its reach when most of its addition lies beyond it; a
  negative click never grows the mask.
  ``score`` = IoU between the masks after ``iterations-1`` and ``iterations`` GrabCut iterations
  (a stability estimate, not a calibrated probability).
* ``automatic``: marker-based watershed superpixels on a grid (SLIC-like seeds), merged greedily
  by mean CIE-Lab colour distance; regions of at least ``min_area_frac`` of the image, except the
  background (``backend.is_background``: touching all four borders and covering half the image), are
  returned with ``score`` = ``1 - exp(-contrast / 20)``, ``contrast`` = mean Lab distance to
  adjacent regions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .interface import (
    AutoMask,
    Embedding,
    PromptResult,
    candidate_index,
    check_embedding,
    is_background,
    logits_to_mask,
    mask_bbox_xywh,
    mask_to_logits,
    validate_image,
    validate_images,
    validate_prompt,
)

__all__ = ["ClassicalBackend"]


class ClassicalBackend:
    """GrabCut / watershed implementation of ``SegmentationBackend``.

    Args:
        iterations: GrabCut iterations per prompt (>= 2).
        margin_frac: with points only, margin around the clicks as a fraction of the image's
            long side.
        click_radius_frac: radius of the seed disk drawn at each click, fraction of the long side.
        work_size: GrabCut runs on a copy of the crop downscaled so its long side is at most this
            many pixels (``cv2.INTER_AREA``); the mask is upsampled bilinearly to the original
            size. ``0`` = full resolution (slow: GrabCut's cost grows faster than the pixel count).
        guard_clicks: apply the follow-up click rules (:meth:`_guard`: a positive click never
            removes the clicked object, a negative click never grows the mask); ``False`` only
            to measure what they change.
        click_reach: reach of a follow-up click, in multiples of its distance to the previous
            mask (positive click) or to that mask's boundary (negative click); see
            :meth:`_guard`. ``0`` = unlimited (the rules before it, to measure what it changes).
        click_reach_min_frac: smallest reach, fraction of the image's long side.
        click_area: most a positive follow-up click may add, in multiples of the disk of radius
            d around it (d = its distance to the previous mask); see :meth:`_guard`. ``0`` =
            unlimited (the rules before it, to measure what it changes).
    """

    model_name = "classical-grabcut"
    checkpoint_sha256 = "none"

    def __init__(
        self,
        *,
        iterations: int = 5,
        margin_frac: float = 0.25,
        click_radius_frac: float = 0.01,
        work_size: int = 256,
        guard_clicks: bool = True,
        click_reach: float = 5.0,
        click_reach_min_frac: float = 0.03,
        click_area: float = 10.0,
    ) -> None:
        self.click_area = click_area
        self.click_reach = click_reach
        self.click_reach_min_frac = click_reach_min_frac
        self.iterations = max(2, int(iterations))
        self.work_size = max(0, int(work_size))
        self.margin_frac = margin_frac
        self.click_radius_frac = click_radius_frac
        self.guard_clicks = guard_clicks
        self.encoder_calls = 0  # for interface parity with SamBackend (counts embed() batches)
        self.images_encoded = 0

    def embed(self, images: list[np.ndarray]) -> list[Embedding]:
        """One :class:`Embedding` per RGB uint8 ``(H, W, 3)`` image (holds the image itself)."""
        images = validate_images(images)
        self.encoder_calls += 1
        self.images_encoded += len(images)
        return [
            Embedding(
                model_name=self.model_name,
                checkpoint_sha256=self.checkpoint_sha256,
                original_size=(im.shape[0], im.shape[1]),
                input_size=(im.shape[0], im.shape[1]),
                data=im.copy(),
            )
            for im in images
        ]

    # ------------------------------------------------------------------------------------------
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
        """GrabCut mask for a prompt. ``multimask_output`` is accepted and ignored; there is one
        candidate (``candidate`` other than 0 raises PromptError). With
        ``mask_input``, the prompt's last point is the new click and the rules of
        :meth:`_guard` apply."""
        check_embedding(embedding, self.model_name, self.checkpoint_sha256)
        p = validate_prompt(
            embedding.original_size, points=points, point_labels=point_labels, box=box, mask_input=mask_input
        )
        candidate_index([0.0], candidate)
        img = np.asarray(embedding.data)
        h, w = embedding.original_size
        prev = logits_to_mask(p.mask_input, (h, w)) if p.mask_input is not None else None
        pos = p.points[p.point_labels == 1] if p.points is not None else np.zeros((0, 2))
        neg = p.points[p.point_labels == 0] if p.points is not None else np.zeros((0, 2))

        mask, score = self._grabcut(img, p.box, pos, neg, prev)
        if (
            self.guard_clicks
            and prev is not None
            and prev.any()
            and p.points is not None
            and p.point_labels is not None
        ):
            mask, score = self._guard(
                img, p.box, pos, neg, prev, p.points[-1], int(p.point_labels[-1]), mask, score
            )
        return PromptResult(
            mask=mask,
            score=score,
            low_res_logits=mask_to_logits(mask),
            model_name=self.model_name,
            checkpoint_sha256=self.checkpoint_sha256,
        )

    def _guard(self, img, box, pos, neg, prev, click, label: int, mask, score):
        """The rules of a follow-up click (the prompt's last point; ``prev`` = the mask it
        refines): a positive click never removes what was there (the result is the refined mask
        united with ``prev``), and when refining from ``prev`` lost more than half of it (GrabCut
        collapsing onto the click) the refinement is replaced by a fresh segmentation of the
        clicks; a negative click never grows the mask (the refined mask within ``prev``).

        With ``click_reach``: when most of what a positive click adds lies beyond its reach
        (:meth:`_reach`), GrabCut's re-estimated colour model has flipped regions the click did
        not point at (a similar-coloured second object, a shadow, a scarf next to a neck), and
        only what lies within reach is added; when a negative click still removes more than
        half of ``prev`` after the fresh segmentation, it removes only what lies within its
        reach.

        With ``click_area``: the missed region a positive click points into is at least the disk
        of radius d around it (d = the click's distance to ``prev``), and one click means about
        that region. A refinement that lost most of ``prev`` but still adds, connected to the
        click, half that disk only collapsed onto what the click asked for: united with ``prev``
        it answers the click, and no fresh segmentation is tried (a fresh one can flip the whole
        background in). A fresh segmentation is taken only when it adds at most ``click_area``
        disks, and whatever a click adds beyond that is kept to the disk of ``click_area``
        times that area around the click (GrabCut leaking into a similar-coloured
        background)."""
        import cv2

        h, w = prev.shape
        kept = np.count_nonzero(mask & prev)
        half = 0.5 * np.count_nonzero(prev)
        if label == 1:
            cx, cy = self._pixel(click, h, w)
            d = self._distance(prev, cx, cy, inside=False)
            most = self.click_area * np.pi * d * d if self.click_area > 0 else np.inf
            if kept < half and not (self.click_area > 0 and self._answers(mask, prev, cx, cy, d)):
                fresh, fresh_score = self._grabcut(img, box, pos, neg, None)
                if np.count_nonzero(fresh & prev) > kept and np.count_nonzero(fresh & ~prev) <= most:
                    mask, score = fresh, fresh_score
            if self.click_reach > 0:
                # most of what the click adds lies beyond its reach: GrabCut's colour model
                # flipped regions the click did not point at; keep what lies within reach
                reach = self._reach(prev, cx, cy, inside=False)
                new = mask & ~prev
                if np.count_nonzero(new & ~reach) > np.count_nonzero(new & reach):
                    mask = mask & reach
            if np.count_nonzero(mask & ~prev) > most:
                # more than one click can mean: what lies within sqrt(click_area) * d
                disk = np.zeros((h, w), np.uint8)
                cv2.circle(disk, (cx, cy), int(round(np.sqrt(self.click_area) * d)), 1, -1)
                mask = mask & disk.astype(bool)
            out = mask | prev
        else:
            out = mask & prev
            if np.count_nonzero(out) < half:
                fresh, fresh_score = self._grabcut(img, box, pos, neg, None)
                if np.count_nonzero(fresh & prev) > np.count_nonzero(out):
                    out, score = fresh & prev, fresh_score
                if self.click_reach > 0 and np.count_nonzero(out) < half:
                    # still collapsed: the click removes only what lies within its reach
                    out = out | (prev & ~self._reach(prev, *self._pixel(click, h, w), inside=True))
        for pt in neg:  # negative clicks stay background
            x, y = self._pixel(pt, h, w)
            out[y, x] = False
        return out, score

    @staticmethod
    def _distance(prev, cx: int, cy: int, *, inside: bool) -> float:
        """Distance (px) from pixel (cx, cy) to the previous mask (``inside``: to its boundary,
        from within)."""
        import cv2

        region = prev if inside else ~prev
        return float(cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)[cy, cx])

    @staticmethod
    def _answers(mask, prev, cx: int, cy: int, d: float) -> bool:
        """Whether ``mask`` adds to ``prev``, connected to the click (cx, cy), at least half the
        disk of radius ``d`` around it."""
        import cv2

        new = mask & ~prev
        if not new[cy, cx]:
            return False
        _, lab = cv2.connectedComponents(new.astype(np.uint8), connectivity=8)
        return bool(np.count_nonzero(lab == lab[cy, cx]) >= 0.5 * np.pi * d * d)

    @staticmethod
    def _pixel(click, h: int, w: int) -> tuple[int, int]:
        """The pixel (x, y) of a click, clamped to the image."""
        return min(w - 1, max(0, int(click[0]))), min(h - 1, max(0, int(click[1])))

    def _reach(self, prev, cx: int, cy: int, *, inside: bool) -> np.ndarray:
        """Disk a click may change: centred on the click, radius ``click_reach`` times the
        click's distance to the previous mask (a positive click outside it) or to its boundary
        (a negative click inside it), at least ``click_reach_min_frac`` of the long side."""
        import cv2

        h, w = prev.shape
        d = self._distance(prev, cx, cy, inside=inside)
        rho = max(self.click_reach_min_frac * max(h, w), self.click_reach * d)
        disk = np.zeros((h, w), np.uint8)
        cv2.circle(disk, (cx, cy), int(round(rho)), 1, -1)
        return disk.astype(bool)

    def _grabcut(self, img, box, pos, neg, prev):
        """GrabCut for the clicks (``pos``, ``neg``: (k, 2) x/y), ``box`` or ``None``, and the
        previous mask ``prev`` (full-size bool, or ``None``): (mask, score)."""
        import cv2

        h, w = img.shape[:2]
        p_points = np.concatenate([pos, neg]) if len(pos) + len(neg) else np.zeros((0, 2))
        # rectangle of "probable foreground" (x0, y0, x1, y1), inclusive-exclusive ints
        if box is not None:
            x0, y0, x1, y1 = box
        else:
            ext = [pos] if len(pos) else [p_points]
            if prev is not None and prev.any():
                bx, by, bw, bh = mask_bbox_xywh(prev)
                ext.append(np.array([[bx, by], [bx + bw, by + bh]], dtype=np.float64))
            allp = np.concatenate(ext)
            m = self.margin_frac * max(h, w)
            x0, y0 = allp.min(0) - m
            x1, y1 = allp.max(0) + m
        rx0, ry0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
        rx1, ry1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
        rx1, ry1 = max(rx1, rx0 + 1), max(ry1, ry0 + 1)

        # crop = rectangle + background context band (GrabCut needs background samples)
        band = max(8, int(0.05 * max(h, w)))
        cx0, cy0 = max(0, rx0 - band), max(0, ry0 - band)
        cx1, cy1 = min(w, rx1 + band), min(h, ry1 + band)
        ch, cw = cy1 - cy0, cx1 - cx0

        # GrabCut runs on a copy of the crop whose long side is at most ``work_size`` px
        # (its cost grows faster than linearly with the pixel count); everything below is
        # drawn in that working frame, then the mask is upsampled to the original size.
        s = min(1.0, self.work_size / max(ch, cw)) if self.work_size else 1.0
        sh, sw = max(1, int(round(ch * s))), max(1, int(round(cw * s)))
        fx, fy = sw / cw, sh / ch  # exact per-axis scale of the working frame

        def to_work(v: float, f: float, lo: int, n: int) -> int:
            return min(n, max(0, int(round((v - lo) * f))))

        gc = np.full((sh, sw), cv2.GC_BGD, np.uint8)
        iy0, iy1 = to_work(ry0, fy, cy0, sh), max(to_work(ry1, fy, cy0, sh), to_work(ry0, fy, cy0, sh) + 1)
        ix0, ix1 = to_work(rx0, fx, cx0, sw), max(to_work(rx1, fx, cx0, sw), to_work(rx0, fx, cx0, sw) + 1)
        inner = (slice(iy0, iy1), slice(ix0, ix1))
        gc[inner] = cv2.GC_PR_FGD
        if prev is not None:
            sub = prev[cy0:cy1, cx0:cx1].astype(np.float32)
            if s < 1.0:
                sub = cv2.resize(sub, (sw, sh), interpolation=cv2.INTER_AREA)
            gc[inner] = np.where(sub[inner] >= 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
        if (gc == cv2.GC_BGD).sum() == 0:  # rectangle covers the whole image: soft border
            gc[[0, -1], :] = cv2.GC_PR_BGD
            gc[:, [0, -1]] = cv2.GC_PR_BGD
        r = max(2.0, round(self.click_radius_frac * max(h, w)))
        rs = max(1, int(round(r * s)))
        for pts, code in ((neg, cv2.GC_BGD), (pos, cv2.GC_FGD)):
            for pt in pts:
                c = (to_work(pt[0], fx, cx0, sw - 1), to_work(pt[1], fy, cy0, sh - 1))
                cv2.circle(gc, c, rs, int(code), -1)
        fg_codes = (cv2.GC_FGD, cv2.GC_PR_FGD)
        if not np.isin(gc, fg_codes).any() or np.isin(gc, fg_codes).all():
            small_mask = np.isin(gc, fg_codes)
            score = 0.0
        else:
            crop = np.ascontiguousarray(img[cy0:cy1, cx0:cx1, ::-1])
            bgr = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA) if s < 1.0 else crop
            cv2.setRNGSeed(0)  # GrabCut's k-means init uses OpenCV's RNG: make results reproducible
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.grabCut(bgr, gc, None, bgd, fgd, self.iterations - 1, cv2.GC_INIT_WITH_MASK)
            before = np.isin(gc, fg_codes)
            cv2.grabCut(bgr, gc, None, bgd, fgd, 1, cv2.GC_EVAL)
            small_mask = np.isin(gc, fg_codes)
            union = np.logical_or(before, small_mask).sum()
            score = float(np.logical_and(before, small_mask).sum() / union) if union else 0.0
        if s < 1.0:
            # bilinear upsampling of the 0/1 mask, thresholded at 1/2: smooth, sub-pixel boundary
            up = cv2.resize(small_mask.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR)
            crop_mask = up >= 0.5
            for pt in neg:  # a negative click stays background whatever the resampling did
                crop_mask[min(ch - 1, max(0, int(pt[1]) - cy0)), min(cw - 1, max(0, int(pt[0]) - cx0))] = (
                    False
                )
        else:
            crop_mask = small_mask
        crop_mask = self._keep_clicked_components(crop_mask, pos - [cx0, cy0])
        mask = np.zeros((h, w), bool)
        mask[cy0:cy1, cx0:cx1] = crop_mask
        return mask, score

    @staticmethod
    def _keep_clicked_components(mask: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Keep the 8-connected components of ``mask`` that contain a positive click."""
        import cv2

        if len(pos) == 0 or not mask.any():
            return mask
        n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        hh, ww = mask.shape
        ids = {int(lab[min(hh - 1, max(0, int(y))), min(ww - 1, max(0, int(x)))]) for x, y in pos} - {0}
        if not ids:
            return mask
        return np.isin(lab, sorted(ids))

    # ------------------------------------------------------------------------------------------
    def automatic(
        self,
        image: np.ndarray | Embedding,
        *,
        n_segments: int = 300,
        merge_threshold: float = 12.0,
        min_area_frac: float = 0.005,
    ) -> list[AutoMask]:
        """Watershed superpixels merged by colour; returns regions sorted by descending score.

        Args:
            image: RGB uint8 ``(H, W, 3)`` or a classical :class:`Embedding`.
            n_segments: approximate number of initial superpixels.
            merge_threshold: merge adjacent regions whose mean Lab colours differ by less (Lab units).
            min_area_frac: drop regions smaller than this fraction of the image.
        """
        import cv2

        if isinstance(image, Embedding):
            check_embedding(image, self.model_name, self.checkpoint_sha256)
            img = np.asarray(image.data)
        else:
            img = validate_image(image)
        h, w = img.shape[:2]
        smooth = cv2.GaussianBlur(img, (5, 5), 0)
        lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB).astype(np.float32)
        grad = cv2.morphologyEx(lab, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).max(axis=2)

        # grid seeds moved to the lowest gradient in their 5x5 neighbourhood
        step = max(4, int(np.sqrt(h * w / max(1, n_segments))))
        markers = np.zeros((h, w), np.int32)
        label = 0
        for y in range(step // 2, h, step):
            for x in range(step // 2, w, step):
                ya, yb, xa, xb = max(0, y - 2), min(h, y + 3), max(0, x - 2), min(w, x + 3)
                iy, ix = np.unravel_index(np.argmin(grad[ya:yb, xa:xb]), (yb - ya, xb - xa))
                label += 1
                markers[ya + iy, xa + ix] = label
        cv2.watershed(np.ascontiguousarray(smooth[..., ::-1]), markers)
        # assign watershed lines (-1) to a neighbouring region
        lines = markers <= 0
        if lines.any():
            filled = cv2.dilate(np.where(lines, 0, markers).astype(np.float32), np.ones((3, 3), np.uint8))
            markers[lines] = filled[lines].astype(np.int32)
            markers[markers <= 0] = 1
        labels = markers - 1  # 0..label-1
        n = int(labels.max()) + 1

        flat = labels.ravel()
        area = np.bincount(flat, minlength=n).astype(np.float64)
        sums = np.stack([np.bincount(flat, lab[..., c].ravel(), minlength=n) for c in range(3)], 1)
        pairs = np.concatenate(
            [
                np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
                np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], 1),
            ]
        )
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        pairs = np.unique(np.sort(pairs, 1), axis=0)

        parent = list(range(n))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        means = sums / np.maximum(area, 1)[:, None]
        order = np.argsort(np.linalg.norm(means[pairs[:, 0]] - means[pairs[:, 1]], axis=1))
        for a, b in pairs[order]:
            ra, rb = find(int(a)), find(int(b))
            if ra == rb:
                continue
            ma, mb = sums[ra] / area[ra], sums[rb] / area[rb]
            if np.linalg.norm(ma - mb) < merge_threshold:
                parent[rb] = ra
                sums[ra] += sums[rb]
                area[ra] += area[rb]
        root = np.array([find(i) for i in range(n)])
        merged = root[labels]
        rp = np.unique(np.sort(root[pairs], 1), axis=0)
        rp = rp[rp[:, 0] != rp[:, 1]]
        contrast: dict[int, list[float]] = {}
        for a, b in rp:
            d = float(np.linalg.norm(sums[a] / area[a] - sums[b] / area[b]))
            contrast.setdefault(int(a), []).append(d)
            contrast.setdefault(int(b), []).append(d)
        min_area = min_area_frac * h * w
        out: list[AutoMask] = []
        for r in np.unique(root):
            if area[r] < min_area:
                continue
            m = merged == r
            if is_background(m):  # the background with holes where the objects are: not an object
                continue
            c = float(np.mean(contrast.get(int(r), [0.0])))
            out.append(
                AutoMask(
                    mask=m,
                    score=float(1.0 - np.exp(-c / 20.0)),
                    bbox=mask_bbox_xywh(m),
                    model_name=self.model_name,
                    checkpoint_sha256=self.checkpoint_sha256,
                )
            )
        out.sort(key=lambda a: -a.score)
        return out
