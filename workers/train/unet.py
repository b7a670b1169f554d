"""A small U-Net (Ronneberger et al., 2015) for project models: about 1.9 M parameters at the
default width 16 and depth 4.

Why a U-Net rather than a torchvision segmentation model built without downloaded weights: the
skip connections keep full-resolution detail for thin classes (ISBI membranes are 1-3 px wide), and
the measured cost per training step is of the same order (docs/benchmarks.md: at 4 x 256^2 crops on
2 shared CPU threads, U-Net 1.94 M parameters vs LR-ASPP MobileNetV3 3.22 M and DeepLabV3
MobileNetV3 11.0 M; their accuracy from scratch was not measured here).
Same-size convolutions with BatchNorm, so output size = input size when the
input sides are multiples of ``2 ** depth`` (:func:`workers.train.inference.predict_probabilities`
pads to that).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UNet"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """``(N, in_channels, H, W)`` float -> ``(N, n_classes, H, W)`` logits.

    Args:
        in_channels: input channels (3: the RGB the image storage decodes to).
        n_classes: output classes, background included.
        width: channels of the first level; each level below doubles it.
        depth: down-sampling steps (the input sides must be multiples of ``2 ** depth``).
    """

    def __init__(self, *, in_channels: int = 3, n_classes: int = 2, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        self.depth = depth
        chans = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, chans[0])])
        self.down.extend(_block(chans[i], chans[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(_block(chans[i] * 2, chans[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)
