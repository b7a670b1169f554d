"""The propagator interface: seeded with one frame and its mask (or a prompt: points and/or a box),
then handed the next frames one at a time (forward or backward: the caller orders them), answering each
with a mask. Both the optical-flow fallback (`flow.FlowPropagator`) and SAM 2
(`sam2_tracker.Sam2Propagator`) implement it, so the streaming loop (`run`) is one piece of code for both.

A prompt seed: SAM 2 takes points and boxes on its conditioning frame natively (as its video
predictor's `add_new_points_or_box`); a propagator that takes only masks (the fallback) is wrapped in
`PromptSeeded`, which asks an interactive segmenter (a callable: frame and prompt in, mask out) for the
seed mask first."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np


class Propagator(Protocol):
    model_name: str
    model_version: str

    def start(self, frame: np.ndarray, mask: np.ndarray) -> None: ...

    def step(self, frame: np.ndarray) -> np.ndarray: ...


class PromptPropagator(Propagator, Protocol):
    seed_model: dict  # {"name", "version"} of what turns the prompt into the seed mask

    def start_prompt(
        self, frame: np.ndarray, *, points: Any = None, point_labels: Any = None, box: Any = None
    ) -> np.ndarray:
        """Seed from a prompt on `frame` (pixels of the frame); returns the seed mask (bool (H, W))."""
        ...


@dataclass
class Step:
    frame: int  # the frame number
    mask: np.ndarray  # bool (H, W)
    seed: bool = False  # the mask a prompt gave on the seed frame itself


class PromptSeeded:
    """A mask-seeded propagator seeded from a prompt: `segment(frame, points=, point_labels=, box=)`
    gives the seed mask (in LabelHub: the project's interactive segmenter, as a click in the app),
    which then seeds `inner`."""

    def __init__(self, inner: Propagator, segment: Callable[..., np.ndarray], seed_model: dict):
        self.inner = inner
        self.segment = segment
        self.seed_model = seed_model
        self.model_name = inner.model_name
        self.model_version = inner.model_version

    def start(self, frame: np.ndarray, mask: np.ndarray) -> None:
        self.inner.start(frame, mask)

    def start_prompt(
        self, frame: np.ndarray, *, points: Any = None, point_labels: Any = None, box: Any = None
    ) -> np.ndarray:
        mask = np.asarray(self.segment(frame, points=points, point_labels=point_labels, box=box), bool)
        if mask.any():
            self.inner.start(frame, mask)
        return mask

    def step(self, frame: np.ndarray) -> np.ndarray:
        return self.inner.step(frame)


def run(
    propagator: Propagator,
    *,
    seed_frame: int,
    frames: Iterable[tuple[int, np.ndarray]],
    seed_image: np.ndarray,
    seed_mask: np.ndarray | None = None,
    seed_prompt: dict | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[Step]:
    """Carry `seed_mask`, or the mask `seed_prompt` ({points, point_labels, box}) gives (on
    `seed_image`, frame `seed_frame`) through `frames` ((number, RGB) pairs in the order to visit:
    increasing for forward, decreasing for backward), yielding each result as it comes. A prompt's mask
    on the seed frame comes first (`Step.seed`). Stops early when `cancelled()` turns true (checked
    before each frame) or the object is lost (an empty mask: nothing is left to carry)."""
    if (seed_mask is None) == (seed_prompt is None):
        raise ValueError("seed with a mask or with a prompt (one of them)")
    if seed_prompt is not None:
        prompted = cast(PromptPropagator, propagator)
        mask = prompted.start_prompt(
            seed_image,
            points=seed_prompt.get("points"),
            point_labels=seed_prompt.get("point_labels"),
            box=seed_prompt.get("box"),
        )
        yield Step(seed_frame, mask, seed=True)
        if not mask.any():
            return
    else:
        assert seed_mask is not None
        propagator.start(seed_image, seed_mask.astype(bool))
    for number, image in frames:
        if cancelled():
            return
        mask = propagator.step(image)
        yield Step(number, mask)
        if not mask.any():
            return
