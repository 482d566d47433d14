"""The neural equilibrium ``G_eq,i = exp(<alpha(rho, u, T), phi(v_i)>)``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from inversa.neurde._lattice import CX, CY, contract, energy_targets, lattice_weights

__all__ = ["EquilibriumNet", "NeuralEquilibrium"]


def _mlp(n_in: int, width: int, depth: int, n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else width, width), nn.ReLU()]
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class EquilibriumNet(nn.Module):
    """Two networks whose inner product is ``log G_eq``.

    ``alpha`` maps the standardised ``(log rho, ux, uy, log T)`` of a cell to a vector of
    ``features`` numbers and ``phi`` maps each shifted lattice velocity ``v_i`` to
    another; ``G_eq,i = exp(<alpha, phi_i>)`` (NeurDE). ``phi`` depends only on the
    lattice, so it is evaluated once per call for the nine velocities.

    Parameters
    ----------
    shift
        Lattice shift ``U`` the network is trained for.
    width, depth
        Hidden width and number of hidden ReLU layers of both networks.
    features
        Length of the inner product.
    """

    def __init__(self, *, shift: float, width: int = 64, depth: int = 4, features: int = 64):
        super().__init__()
        self.shift = float(shift)
        self.width, self.depth, self.features = width, depth, features
        self.alpha = _mlp(4, width, depth, features)
        self.phi = _mlp(2, width, depth, features)
        # Input standardisation, set from the training data.
        self.register_buffer("mean", torch.zeros(4))
        self.register_buffer("std", torch.ones(4))

    def config(self) -> dict[str, float | int]:
        """Return the constructor arguments (stored with shipped weights)."""
        return {
            "shift": self.shift,
            "width": self.width,
            "depth": self.depth,
            "features": self.features,
        }

    @staticmethod
    def inputs(
        rho: torch.Tensor, ux: torch.Tensor, uy: torch.Tensor, T: torch.Tensor
    ) -> torch.Tensor:
        """Return the alpha-net's raw inputs ``(log rho, ux, uy, log T)`` as ``(..., H, W, 4)``.

        ``log G_eq`` is affine in ``log rho`` and nearly so in ``log T``, so the logs make
        the fit easy; they are then standardised with the training statistics.
        """
        return torch.stack((torch.log(rho), ux, uy, torch.log(T)), dim=-1)

    def forward(
        self, rho: torch.Tensor, ux: torch.Tensor, uy: torch.Tensor, T: torch.Tensor
    ) -> torch.Tensor:
        """Evaluate ``G_eq``.

        Parameters
        ----------
        rho, ux, uy, T
            Fields ``(..., H, W)``.

        Returns
        -------
        torch.Tensor
            ``(..., 9, H, W)`` in the fields' dtype.
        """
        p = next(self.parameters())
        a = self.alpha((self.inputs(rho, ux, uy, T).to(p.dtype) - self.mean) / self.std)
        v = torch.tensor([CX, CY], dtype=p.dtype, device=p.device).T
        v = v + torch.tensor([self.shift, 0.0], dtype=p.dtype, device=p.device)
        ph = self.phi(v)  # (9, features)
        logits = torch.matmul(a, ph.T)  # (..., H, W, 9)
        return torch.exp(logits).movedim(-1, -3).to(rho.dtype)


@dataclass(frozen=True)
class NeuralEquilibrium:
    """A trained `EquilibriumNet` used as the solver's G equilibrium.

    Attributes
    ----------
    net
        The network.
    project_moments
        Add the smallest lattice correction ``w_i(T) (a + b . c_i)`` that restores the
        exact zeroth and first moments (energy and energy flux). Off, the solver
        conserves energy only as well as the network fits; on, exactly (our addition,
        not in the paper).
    """

    net: EquilibriumNet
    project_moments: bool = True

    def __call__(self, rho, ux, uy, T, *, config, guess, step):
        G = self.net(rho, ux, uy, T)
        if self.project_moments:
            G = project_moments(G, rho, ux, uy, T, gamma=config.gamma, shift=config.shift)
        return G, None


def project_moments(
    G: torch.Tensor,
    rho: torch.Tensor,
    ux: torch.Tensor,
    uy: torch.Tensor,
    T: torch.Tensor,
    *,
    gamma: float,
    shift: float,
) -> torch.Tensor:
    """Correct ``G (..., 9, H, W)`` so its zeroth and first moments are exactly the equilibrium's.

    Uses ``sum_i w_i = 1``, ``sum_i w_i c_i = 0`` and ``sum_i w_i c_i c_i = T I``: the
    correction ``w_i (a + b . c_i)`` has zeroth moment ``a`` and first moment
    ``a U e_x + T b`` on the shifted lattice.
    """
    two_e, fx, fy = energy_targets(rho, ux, uy, T, gamma=gamma)
    cx = torch.tensor(CX, dtype=G.dtype, device=G.device)
    cy = torch.tensor(CY, dtype=G.dtype, device=G.device)
    m0, mx, my = contract(torch.stack((torch.ones_like(cx), cx + shift, cy)), G).unbind(dim=-3)
    a = two_e - m0
    bx = (fx - mx - a * shift) / T
    by = (fy - my) / T
    corr = (
        a.unsqueeze(-3)
        + bx.unsqueeze(-3) * cx[:, None, None]
        + by.unsqueeze(-3) * cy[:, None, None]
    )
    return G + lattice_weights(T) * corr
