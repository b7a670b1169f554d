"""The propagator interface: seeded with one frame and its mask, then handed the next frames one at a
time (forward or backward: the caller orders them), answering each with a mask. Both the optical-flow
fallback (`flow.FlowPropagator`) and SAM 2 (`sam2_tracker.Sam2Propagator`) implement it, so the
streaming loop (`run`) is one piece of code for both."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Propagator(Protocol):
    model_name: str
    model_version: str

    def start(self, frame: np.ndarray, mask: np.ndarray) -> None: ...

    def step(self, frame: np.ndarray) -> np.ndarray: ...


@dataclass
class Step:
    frame: int  # the frame number
    mask: np.ndarray  # bool (H, W)


def run(
    propagator: Propagator,
    *,
    seed_frame: int,
    seed_mask: np.ndarray,
    frames: Iterable[tuple[int, np.ndarray]],
    seed_image: np.ndarray,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[Step]:
    """Carry `seed_mask` (on `seed_image`, frame `seed_frame`) through `frames` ((number, RGB) pairs in
    the order to visit: increasing for forward, decreasing for backward), yielding each result as it
    comes. Stops early when `cancelled()` turns true (checked before each frame) or the object is lost
    (an empty mask: nothing is left to carry)."""
    propagator.start(seed_image, seed_mask.astype(bool))
    for number, image in frames:
        if cancelled():
            return
        mask = propagator.step(image)
        yield Step(number, mask)
        if not mask.any():
            return
