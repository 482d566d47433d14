"""Random splits, training with early stopping, and accuracy with confidence intervals.

Training runs on :func:`inversa.core.training.train`: one step per epoch, the validation
loss of the current weights returned as a metric and monitored by its early stopping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from inversa.core import training
from inversa.core.errors import InputError

__all__ = ["SPLITS", "Accuracy", "TrainConfig", "evaluate", "random_split", "train_node_classifier"]

#: Named (train, validation) fractions; the rest is the test set.
SPLITS = {"sparse": (0.025, 0.025), "dense": (0.6, 0.2)}


def random_split(
    y: torch.Tensor, *, split: str, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random class-balanced train / validation / test masks.

    Training nodes are drawn per class (``round(train * n / C)`` each), validation
    nodes at random from the rest, and every remaining node is a test node.

    Parameters
    ----------
    y
        Labels (n,), integers 0..C-1.
    split
        ``"sparse"`` (2.5/2.5/95 %) or ``"dense"`` (60/20/20 %).
    seed
        Seed of the split.

    Returns
    -------
    train, val, test
        Boolean masks, shape (n,).
    """
    if split not in SPLITS:
        raise InputError(None, f"split must be one of {sorted(SPLITS)}, got {split!r}")
    train_frac, val_frac = SPLITS[split]
    labels = y.cpu().numpy()
    n = len(labels)
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    per_class = max(1, round(train_frac * n / len(classes)))
    train = np.zeros(n, dtype=bool)
    for c in classes:
        idx = np.flatnonzero(labels == c)
        train[rng.choice(idx, size=min(per_class, len(idx)), replace=False)] = True
    rest = rng.permutation(np.flatnonzero(~train))
    n_val = max(1, round(val_frac * n))
    val = np.zeros(n, dtype=bool)
    val[rest[:n_val]] = True
    test = ~(train | val)
    return tuple(torch.from_numpy(m).to(y.device) for m in (train, val, test))


@dataclass(frozen=True)
class TrainConfig:
    """Training of a node classifier (the GPRGNN/JDR recipe).

    Parameters
    ----------
    model
        ``"gcn"`` or ``"gprgnn"``.
    lr, weight_decay
        Adam settings.
    max_epochs
        Upper bound on epochs.
    patience
        Early stopping (>= 1): stop once the validation loss exceeds the mean of the last
        ``patience`` validation losses; the test accuracy at the lowest validation
        loss is reported.
    hidden, dropout
        Model width and dropout.
    """

    model: str = "gcn"
    lr: float = 0.01
    weight_decay: float = 5e-4
    max_epochs: int = 1000
    patience: int = 200
    hidden: int = 64
    dropout: float = 0.5


def train_node_classifier(
    data,
    masks: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    config: TrainConfig = TrainConfig(),
    seed: int = 0,
) -> tuple[float, float]:
    """Train one model on one split.

    Parameters
    ----------
    data
        PyG ``Data`` with ``x`` (n, F), ``edge_index`` (2, E), ``y`` (n,) and optional
        ``edge_weight`` or one-dimensional ``edge_attr`` (E,).
    masks
        ``(train, val, test)`` boolean masks (n,).
    config
        Model and optimiser settings.
    seed
        Seed of the weights and dropout.

    Returns
    -------
    val_acc, test_acc
        Accuracies (fractions) at the epoch of lowest validation loss.
    """
    from inversa.jdr._models import GCN, GPRGNN

    torch.manual_seed(seed)
    n_classes = int(data.y.max()) + 1
    if config.model == "gcn":
        model = GCN(data.num_features, n_classes, hidden=config.hidden, dropout=config.dropout)
    elif config.model == "gprgnn":
        model = GPRGNN(data.num_features, n_classes, hidden=config.hidden, dropout=config.dropout)
    else:
        raise InputError(None, f"model must be 'gcn' or 'gprgnn', got {config.model!r}")
    model = model.to(data.x.device)
    weight = getattr(data, "edge_weight", None)
    if (
        weight is None
        and getattr(data, "edge_attr", None) is not None
        and data.edge_attr.dim() == 1
    ):
        weight = data.edge_attr
    x = data.x.float()
    weight = None if weight is None else weight.float()
    train, val, test = masks
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_loss, best = math.inf, (0.0, 0.0)

    def loss_fn(_epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        nonlocal best_loss, best
        # The current weights are evaluated (no dropout) and trained from one forward:
        # the first layer's product is shared, the costliest part on wide features.
        out, evaluated = model.train_eval_logits(x, data.edge_index, weight)
        val_loss = float(F.cross_entropy(evaluated[val], data.y[val]))
        if val_loss < best_loss:
            pred = evaluated.argmax(dim=1)
            best_loss = val_loss
            best = (
                float((pred[val] == data.y[val]).float().mean()),
                float((pred[test] == data.y[test]).float().mean()),
            )
        return F.cross_entropy(out[train], data.y[train]), {"val_loss": val_loss}

    stop = training.EarlyStopping(metric="val_loss", patience=config.patience, rule="mean")
    run = training.TrainConfig(
        steps=config.max_epochs,
        log_every=max(1, config.max_epochs),
        progress=False,
        early_stopping=stop,
    )
    training.train(model=model, optimizer=opt, loss_fn=loss_fn, config=run)
    return best


@dataclass(frozen=True)
class Accuracy:
    """Accuracy over random splits with a 95 % confidence interval (Student t).

    Attributes
    ----------
    mean, ci95
        Mean test accuracy and half-width of its 95 % interval, in percent.
    val_mean
        Mean validation accuracy in percent.
    per_split
        Test accuracy of each split, in percent.
    """

    mean: float
    ci95: float
    val_mean: float
    per_split: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.ci95:.2f}"


def evaluate(
    data,
    *,
    splits: int,
    split: str = "sparse",
    config: TrainConfig = TrainConfig(),
    seed: int = 0,
) -> Accuracy:
    """Train on ``splits`` random splits and summarise the test accuracy.

    Parameters
    ----------
    data
        PyG ``Data`` (see :func:`train_node_classifier`).
    splits
        Number of random splits (each with its own weights seed).
    split
        ``"sparse"`` or ``"dense"``.
    config
        Model and optimiser settings.
    seed
        Base seed; split ``s`` uses ``seed + s``.
    """
    from scipy import stats

    if splits < 1:
        raise InputError(None, "splits must be >= 1")
    vals, tests = [], []
    for s in range(splits):
        masks = random_split(data.y, split=split, seed=seed + s)
        v, t = train_node_classifier(data, masks, config=config, seed=seed + s)
        vals.append(100 * v)
        tests.append(100 * t)
    arr = np.array(tests)
    half = 0.0
    if splits > 1:
        half = float(stats.t.ppf(0.975, splits - 1) * arr.std(ddof=1) / math.sqrt(splits))
    return Accuracy(
        mean=float(arr.mean()), ci95=half, val_mean=float(np.mean(vals)), per_split=tuple(tests)
    )
