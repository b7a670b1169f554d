"""Everything mode's crop layers reach SAM only (LABELHUB_SAM_CROP_LAYERS); the classical backend,
whose automatic() has no crops, is called as before."""

from __future__ import annotations

import numpy as np

from labelhub.predictions.services import _crop_options
from workers.sam.classical import ClassicalBackend
from workers.sam.predictor import SamBackend


def test_crop_layers_go_to_sam_with_the_pixels(settings):
    pixels = np.zeros((4, 4, 3), np.uint8)
    settings.LABELHUB_SAM_CROP_LAYERS = 0
    assert _crop_options(SamBackend, pixels) == {}
    settings.LABELHUB_SAM_CROP_LAYERS = 2
    settings.LABELHUB_SAM_CROP_POINTS_DOWNSCALE = 2
    options = _crop_options(SamBackend, pixels)
    assert options["crop_n_layers"] == 2 and options["crop_n_points_downscale_factor"] == 2
    assert options["source"] is pixels
    assert _crop_options(ClassicalBackend(), pixels) == {}
