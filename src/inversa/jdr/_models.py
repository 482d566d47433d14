"""Downstream node classifiers: GCN and GPRGNN (PyTorch Geometric)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GCN", "GPRGNN"]


class GCN(nn.Module):
    """Two-layer GCN (Kipf & Welling) with dropout; uses edge weights when given.

    Parameters
    ----------
    in_features, n_classes
        Input width and number of classes.
    hidden
        Hidden width.
    dropout
        Dropout rate on the input and hidden layer.
    """

    def __init__(
        self, in_features: int, n_classes: int, *, hidden: int = 64, dropout: float = 0.5
    ) -> None:
        from torch_geometric.nn import GCNConv

        super().__init__()
        # Normalisation is cached: the graph is fixed during training.
        self.conv1 = GCNConv(in_features, hidden, cached=True)
        self.conv2 = GCNConv(hidden, n_classes, cached=True)
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits (n, C) from features (n, F), edges (2, E) and weights (E,)."""
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(self.conv1(x, edge_index, edge_weight))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index, edge_weight)


class GPRGNN(nn.Module):
    """GPRGNN (Chien et al. 2021): an MLP followed by learnable generalized PageRank.

    ``logits = sum_k gamma_k (D^-1/2 (A + I) D^-1/2)^k MLP(x)``, ``gamma`` initialised
    to the personalised-PageRank weights ``alpha (1 - alpha)^k`` (last one
    ``(1 - alpha)^K``) and learned with the rest.

    Parameters
    ----------
    in_features, n_classes
        Input width and number of classes.
    hidden
        Hidden width of the MLP.
    K
        Propagation steps.
    alpha
        PPR teleport probability of the initial weights.
    dropout, dprate
        Dropout in the MLP and before propagation.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        *,
        hidden: int = 64,
        K: int = 10,
        alpha: float = 0.1,
        dropout: float = 0.5,
        dprate: float = 0.5,
    ) -> None:
        super().__init__()
        self.lin1 = nn.Linear(in_features, hidden)
        self.lin2 = nn.Linear(hidden, n_classes)
        gamma = alpha * (1 - alpha) ** torch.arange(K + 1, dtype=torch.float32)
        gamma[-1] = (1 - alpha) ** K
        self.gamma = nn.Parameter(gamma)
        self.K = K
        self.dropout = dropout
        self.dprate = dprate
        self._prop: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits (n, C) from features (n, F), edges (2, E) and weights (E,)."""
        from torch_geometric.nn.conv.gcn_conv import gcn_norm

        if self._prop is None:
            # Cached like GCNConv(cached=True): the graph is fixed during training.
            self._prop = gcn_norm(edge_index, edge_weight, x.shape[0], add_self_loops=True)
        (src, dst), w = self._prop
        w = w[:, None]
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(self.lin1(x))
        x = F.dropout(x, self.dropout, self.training)
        h = self.lin2(x)
        h = F.dropout(h, self.dprate, self.training)
        out = self.gamma[0] * h
        for k in range(1, self.K + 1):
            # (P h)_i = sum over edges j -> i of w_ji h_j.
            h = torch.zeros_like(h).index_add_(0, dst, w * h[src])
            out = out + self.gamma[k] * h
        return out
