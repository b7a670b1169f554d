"""The training loop of project models: images and label maps in, weights and held-out metrics out.

Deterministic for a seed and a fixed number of epochs (seeded torch/numpy, one CPU thread count,
deterministic algorithms); a ``minutes`` budget stops training early at a point that depends on the
machine's speed (the epochs actually run are recorded). Samples are random crops with flips and
90-degree rotations; the loss is cross-entropy plus soft Dice (the Dice term keeps thin classes such
as membranes from being swamped by the background). After each epoch the model is scored on the
held-out images with :func:`workers.train.metrics.segmentation_scores` and the best-scoring epoch's
weights are kept.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .inference import normalise, predict_labels
from .metrics import mean_scores, segmentation_scores

__all__ = ["TrainConfig", "TrainResult", "load_model", "train_model"]


@dataclass
class TrainConfig:
    """Hyper-parameters; ``epochs`` x ``steps_per_epoch`` batches of ``batch_size`` crops of ``crop`` px."""

    n_classes: int = 2
    epochs: int = 40
    steps_per_epoch: int = 10
    minutes: float | None = None  # wall-clock budget; None = run every epoch
    batch_size: int = 4
    crop: int = 256
    lr: float = 3e-3
    width: int = 16
    depth: int = 4
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads (None: torch's default)
    tolerance: float = 2.0  # Boundary F1 tolerance, pixels
    select_by: str = "dice"  # held-out figure that picks the kept epoch


@dataclass
class TrainResult:
    weights: bytes  # torch.save of {"config", "state_dict"}
    metrics: dict  # held-out means of the kept epoch (empty without held-out images)
    history: list[dict] = field(default_factory=list)  # one row per epoch
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0
    parameters: int = 0


Progress = Callable[[dict], None]


def _batch(rng: np.random.Generator, xs: list[np.ndarray], ys: list[np.ndarray], size: int, crop: int):
    bx, by = [], []
    for _ in range(size):
        i = int(rng.integers(len(xs)))
        x, y = xs[i], ys[i]
        h, w = y.shape
        ch, cw = min(crop, h), min(crop, w)
        r, c = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        x, y = x[:, r : r + ch, c : c + cw], y[r : r + ch, c : c + cw]
        k = int(rng.integers(4))
        x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, ::-1]
        bx.append(np.ascontiguousarray(x))
        by.append(np.ascontiguousarray(y))
    return np.stack(bx), np.stack(by)


def _learning_rate(config: TrainConfig, done: float, started: float, deadline: float | None) -> float:
    """Linear warm-up over the first 5% then cosine decay to zero; with a time budget, the share done
    is the larger of steps and time spent, so the schedule ends when the budget does."""
    if deadline is not None:
        done = max(done, (time.perf_counter() - started) / (deadline - started))
    done = min(done, 1.0)
    if done < 0.05:
        return config.lr * (0.1 + 0.9 * done / 0.05)
    return config.lr * 0.5 * (1 + np.cos(np.pi * (done - 0.05) / 0.95))


def row_seconds(history: list[dict]) -> float:
    """Seconds the last epoch took (so a time budget stops before an epoch would overrun it)."""
    if len(history) < 2:
        return history[0]["seconds"] if history else 0.0
    return history[-1]["seconds"] - history[-2]["seconds"]


def build_model(config: TrainConfig):
    from .unet import UNet

    return UNet(in_channels=3, n_classes=config.n_classes, width=config.width, depth=config.depth)


def load_model(weights: bytes, *, device: str = "cpu"):
    """The model saved by :func:`train_model` (``weights`` bytes), in eval mode, and its config."""
    import torch

    saved = torch.load(io.BytesIO(weights), map_location=device, weights_only=True)
    config = TrainConfig(**saved["config"])
    model = build_model(config)
    model.load_state_dict(saved["state_dict"])
    return model.to(device).eval(), config


def evaluate(model, images: list[np.ndarray], labels: list[np.ndarray], config: TrainConfig) -> dict:
    """Held-out means of :func:`segmentation_scores` over every foreground class (1..n-1)."""
    rows = [
        segmentation_scores(
            predict_labels(model, image, device=config.device),
            label,
            classes=list(range(1, config.n_classes)),
            tolerance=config.tolerance,
        )
        for image, label in zip(images, labels, strict=True)
    ]
    return mean_scores(rows)


def train_model(
    images: list[np.ndarray],
    labels: list[np.ndarray],
    *,
    config: TrainConfig,
    heldout_images: Sequence[np.ndarray] = (),
    heldout_labels: Sequence[np.ndarray] = (),
    progress: Progress | None = None,
) -> TrainResult:
    """Train a :class:`~workers.train.unet.UNet` on ``images`` (``(H, W, 3)`` uint8) and ``labels``
    (``(H, W)`` integer class maps, 0 = background). ``progress`` receives ``{"epoch", "epochs",
    "loss", "metrics", "seconds"}`` after every epoch."""
    import torch
    import torch.nn.functional as F

    if not images or len(images) != len(labels):
        raise ValueError("train_model needs one label map per image, and at least one image")
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(config.seed)
    xs = [normalise(i) for i in images]
    ys = [np.asarray(y, dtype=np.int64) for y in labels]
    model = build_model(config).to(config.device)
    parameters = sum(p.numel() for p in model.parameters())
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    total_steps = config.epochs * config.steps_per_epoch
    step = 0
    history: list[dict] = []
    best: tuple[float, int, dict, dict] | None = None
    deadline = started + config.minutes * 60 if config.minutes else None
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses: list[float] = []
        for _ in range(config.steps_per_epoch):
            if losses and deadline is not None and time.perf_counter() >= deadline:
                break  # the budget is spent mid-epoch: score what there is
            for group in optimiser.param_groups:
                group["lr"] = _learning_rate(config, step / total_steps, started, deadline)
            step += 1
            bx, by = _batch(rng, xs, ys, config.batch_size, config.crop)
            x = torch.from_numpy(bx).to(config.device)
            y = torch.from_numpy(by).to(config.device)
            logits = model(x)
            probs = logits.softmax(1)
            onehot = F.one_hot(y, config.n_classes).permute(0, 3, 1, 2).float()
            inter = (probs * onehot).sum((0, 2, 3))
            soft_dice = (2 * inter + 1) / (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + 1)
            loss = F.cross_entropy(logits, y) + (1 - soft_dice[1:].mean())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        model.eval()
        metrics = (
            evaluate(model, list(heldout_images), list(heldout_labels), config) if heldout_images else {}
        )
        row = {
            "epoch": epoch,
            "epochs": config.epochs,
            "loss": round(float(np.mean(losses)), 5),
            "metrics": {k: None if v is None else round(v, 5) for k, v in metrics.items()},
            "seconds": round(time.perf_counter() - started, 2),
        }
        history.append(row)
        score = metrics.get(config.select_by)
        if score is None:  # no held-out figure (or no class present): the lower loss wins
            score = -float(np.mean(losses))
        if best is None or score > best[0]:
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best = (score, epoch, state, metrics)
        if progress is not None:
            progress(row)
        if deadline is not None and time.perf_counter() >= deadline - row_seconds(history):
            break
    assert best is not None
    buf = io.BytesIO()
    torch.save({"config": asdict(config), "state_dict": best[2]}, buf)
    return TrainResult(
        weights=buf.getvalue(),
        metrics=best[3],
        history=history,
        epochs_run=epoch,
        best_epoch=best[1],
        seconds=time.perf_counter() - started,
        parameters=parameters,
    )
