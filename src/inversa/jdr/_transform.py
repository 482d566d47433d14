"""JDR as a PyTorch Geometric transform."""

from __future__ import annotations

import copy

import torch

from inversa.jdr._algorithm import JDRConfig, jdr

__all__ = ["JDR"]


def _base_transform():
    from torch_geometric.transforms import BaseTransform

    return BaseTransform


class JDR(_base_transform()):
    """Joint denoising and rewiring as a transform, usable in ``T.Compose``.

    Replaces ``edge_index`` by the rewired graph, puts its weights in ``edge_attr``
    (and ``edge_weight``), and replaces ``x`` by the denoised features. The input must be
    undirected without self-loops (prepend ``T.ToUndirected()`` / ``T.RemoveSelfLoops()``).

    Parameters
    ----------
    config
        The JDR parameters (default :class:`JDRConfig`).

    Examples
    --------
    >>> import torch_geometric.transforms as T
    >>> transform = T.Compose([T.ToUndirected(), JDR(config=JDRConfig(iterations=5))])
    """

    def __init__(self, *, config: JDRConfig | None = None) -> None:
        self.config = JDRConfig() if config is None else config

    def forward(self, data):
        """Rewire one ``Data`` object (a shallow copy; the input is left unchanged)."""
        n = data.num_nodes
        weight = getattr(data, "edge_weight", None)
        if weight is None and getattr(data, "edge_attr", None) is not None:
            if data.edge_attr.dim() == 1:
                weight = data.edge_attr
        if weight is None:
            weight = torch.ones(data.edge_index.shape[1], dtype=torch.float64)
        adj = torch.sparse_coo_tensor(
            data.edge_index.cpu(), weight.detach().cpu().double(), (n, n), check_invariants=True
        ).coalesce()
        result = jdr(adj, data.x, config=self.config)
        out = copy.copy(data)
        out.edge_index = result.edge_index.to(data.edge_index.device)
        out.edge_attr = result.edge_weight
        out.edge_weight = result.edge_weight
        out.x = result.x
        return out

    def __repr__(self) -> str:
        c = self.config
        return (
            f"JDR(K={c.iterations}, L_A={c.l_a}, L_X={c.l_x}, eta_A={c.eta_a}, "
            f"eta_X={c.eta_x}, eta_X2={c.eta_x2})"
        )
