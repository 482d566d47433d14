import math

import pytest
import torch

from inversa.core.errors import InputError
from inversa.neurde import GasState, exact_riemann

# Toro, Riemann Solvers and Numerical Methods for Fluid Dynamics, table 4.2/4.3 (gamma 1.4).
TORO = [
    ((1.0, 0.0, 1.0), (0.125, 0.0, 0.1), 0.30313, 0.92745),
    ((1.0, -2.0, 0.4), (1.0, 2.0, 0.4), 0.00189, 0.0),
    ((1.0, 0.0, 1000.0), (1.0, 0.0, 0.01), 460.894, 19.5975),
    ((1.0, 0.0, 0.01), (1.0, 0.0, 100.0), 46.0950, -6.19633),
    ((5.99924, 19.5975, 460.894), (5.99242, -6.19633, 46.0950), 1691.64, 8.68975),
]


@pytest.mark.parametrize(("left", "right", "p_star", "u_star"), TORO)
def test_toro_star_values(left, right, p_star, u_star):
    sol = exact_riemann(GasState(*left), GasState(*right), gamma=1.4)
    assert sol.p_star == pytest.approx(p_star, rel=2e-5, abs=1e-5)
    assert sol.u_star == pytest.approx(u_star, rel=2e-5, abs=1e-5)


def test_sampled_solution_obeys_rankine_hugoniot():
    # Sod's problem: the right shock must conserve mass, momentum and energy fluxes.
    g = 1.4
    sol = exact_riemann(GasState(1.0, 0.0, 1.0), GasState(0.125, 0.0, 0.1), gamma=g)
    s = sol.shock_speed("right")
    assert s == pytest.approx(1.75216, rel=1e-5)  # Toro section 4.3.3
    x = torch.tensor([s * 0.2 - 1e-9, s * 0.2 + 1e-9], dtype=torch.float64)
    rho, u, p = sol.sample(x, 0.2)
    e = p / (g - 1) + rho * u**2 / 2
    mass = rho * (u - s)
    mom = rho * u * (u - s) + p
    energy = e * (u - s) + p * u
    for q in (mass, mom, energy):
        assert float(q[0]) == pytest.approx(float(q[1]), rel=1e-10)
    # Left of the rarefaction head and right of the shock: the initial states.
    rho, u, p = sol.sample(torch.tensor([-0.5, 0.5], dtype=torch.float64), 0.2)
    assert rho.tolist() == [1.0, 0.125] and p.tolist() == [1.0, 0.1]


def test_rarefaction_fan_is_isentropic_and_sonic_at_the_tail():
    g = 1.4
    sol = exact_riemann(GasState(1.0, 0.0, 1.0), GasState(0.125, 0.0, 0.1), gamma=g)
    x = torch.linspace(-1.0, 0.0, 41, dtype=torch.float64)
    rho, u, p = sol.sample(x, 1.0)
    entropy = p / rho**g
    assert torch.allclose(entropy, torch.ones_like(entropy), rtol=1e-12)
    a = torch.sqrt(g * p / rho)
    inside = (x > -math.sqrt(g)) & (x < sol.u_star - math.sqrt(g * sol.p_star / sol.rho_star_left))
    assert torch.allclose((u - a)[inside], x[inside], atol=1e-12)  # characteristic x/t = u - a


def test_bad_riemann_data():
    with pytest.raises(InputError, match="vacuum"):
        exact_riemann(GasState(1.0, -10.0, 0.1), GasState(1.0, 10.0, 0.1), gamma=1.4)
    with pytest.raises(InputError, match="positive"):
        exact_riemann(GasState(-1.0, 0.0, 1.0), GasState(1.0, 0.0, 1.0), gamma=1.4)
    with pytest.raises(InputError, match="gamma"):
        exact_riemann(GasState(1.0, 0.0, 1.0), GasState(1.0, 0.0, 1.0), gamma=1.0)
