"""Downstream node classifiers: GCN and GPRGNN (PyTorch Geometric)."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GCN", "GPRGNN", "gcn_operator"]


class _Propagate(torch.autograd.Function):
    """``A @ h`` for a fixed sparse ``A``; the backward uses the precomputed ``A^T``."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return a @ h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, ctx.a_t @ grad


def gcn_operator(
    edge_index: torch.Tensor, edge_weight: torch.Tensor | None, n_nodes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """GCN propagation matrix ``D^-1/2 (A + I) D^-1/2`` as sparse CSR, and its transpose.

    The normalisation is PyG's ``gcn_norm`` (self-loops added, in-degrees of targets), so
    ``P @ h`` equals a ``GCNConv`` propagation: row i sums over the edges ``j -> i``.

    Parameters
    ----------
    edge_index
        (2, E) edges ``(source, target)``.
    edge_weight
        (E,) weights or None.
    n_nodes
        Number of nodes n.

    Returns
    -------
    p, p_t
        (n, n) sparse CSR matrices ``P`` and ``P^T``.
    """
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    (src, dst), w = gcn_norm(edge_index, edge_weight, n_nodes, add_self_loops=True)
    shape = (n_nodes, n_nodes)
    with warnings.catch_warnings():
        # CSR products are stable in torch; only the layout is labelled beta.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        p = torch.sparse_coo_tensor(torch.stack([dst, src]), w, shape, check_invariants=True)
        p_t = torch.sparse_coo_tensor(torch.stack([src, dst]), w, shape, check_invariants=True)
        return p.coalesce().to_sparse_csr(), p_t.coalesce().to_sparse_csr()


class GCN(nn.Module):
    """Two-layer GCN (Kipf & Welling) as in GPRGNN's code: ``P relu(P X W1 + b1) W2 + b2``.

    ``P = D^-1/2 (A + I) D^-1/2`` (edge weights used when given), dropout on the hidden
    layer only (as GPRGNN's ``GCN_Net``, the JDR paper's downstream model). The output
    equals two PyG ``GCNConv`` layers with the same weights (tested), but the model
    caches ``P`` as a sparse matrix and the product ``P X`` (the graph and the features
    are fixed during training, as with ``GCNConv(cached=True)``), so a training epoch costs
    two dense products with the features instead of message passing over every edge at
    the hidden width.

    Parameters
    ----------
    in_features, n_classes
        Input width and number of classes.
    hidden
        Hidden width.
    dropout
        Dropout rate on the hidden layer.
    """

    def __init__(
        self, in_features: int, n_classes: int, *, hidden: int = 64, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.weight1 = nn.Parameter(nn.init.xavier_uniform_(torch.empty(in_features, hidden)))
        self.bias1 = nn.Parameter(torch.zeros(hidden))
        self.weight2 = nn.Parameter(nn.init.xavier_uniform_(torch.empty(hidden, n_classes)))
        self.bias2 = nn.Parameter(torch.zeros(n_classes))
        self.dropout = dropout
        self._graph: tuple[torch.Tensor, torch.Tensor] | None = None
        self._px: tuple[torch.Tensor, torch.Tensor] | None = None

    def _hidden(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None
    ) -> torch.Tensor:
        if self._graph is None:
            self._graph = gcn_operator(edge_index, edge_weight, x.shape[0])
        if self._px is None or self._px[0] is not x:
            self._px = (x, (self._graph[0] @ x).detach())
        return self._px[1] @ self.weight1 + self.bias1

    def _head(self, h: torch.Tensor, *, training: bool) -> torch.Tensor:
        z = F.dropout(F.relu(h), self.dropout, training)
        return _Propagate.apply(*self._graph, z @ self.weight2) + self.bias2

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits (n, C) from features (n, F), edges (2, E) and weights (E,).

        The graph is cached on the first call; use a new model for a new graph.
        """
        return self._head(self._hidden(x, edge_index, edge_weight), training=self.training)

    def train_eval_logits(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training-mode and evaluation-mode logits (n, C) of the current weights.

        The first (with dropout) is differentiable; the second (no dropout) is detached.
        Both share the first layer's product with the features.
        """
        h = self._hidden(x, edge_index, edge_weight)
        with torch.no_grad():
            evaluated = self._head(h.detach(), training=False)
        return self._head(h, training=True), evaluated


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
        self._graph: tuple[torch.Tensor, torch.Tensor] | None = None

    def _run(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_weight: torch.Tensor | None,
        *,
        training: bool,
    ) -> torch.Tensor:
        if self._graph is None:
            # Cached like GCNConv(cached=True): the graph is fixed during training.
            self._graph = gcn_operator(edge_index, edge_weight, x.shape[0])
        x = F.dropout(x, self.dropout, training)
        x = F.relu(self.lin1(x))
        x = F.dropout(x, self.dropout, training)
        h = F.dropout(self.lin2(x), self.dprate, training)
        out = self.gamma[0] * h
        for k in range(1, self.K + 1):
            h = _Propagate.apply(*self._graph, h)
            out = out + self.gamma[k] * h
        return out

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits (n, C) from features (n, F), edges (2, E) and weights (E,).

        The graph is cached on the first call; use a new model for a new graph.
        """
        return self._run(x, edge_index, edge_weight, training=self.training)

    def train_eval_logits(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training-mode and evaluation-mode logits (n, C) of the current weights.

        The first (with dropout) is differentiable; the second (no dropout) is detached.
        """
        with torch.no_grad():
            evaluated = self._run(x, edge_index, edge_weight, training=False)
        return self._run(x, edge_index, edge_weight, training=True), evaluated
