import numpy as np
import pytest
import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.springblock import (
    curvature,
    layer_features,
    load_centroid,
    load_spread,
    separation,
    separation_curve,
)


def _numpy_d(x: np.ndarray, y: np.ndarray) -> float:
    n = len(y)
    mu = x.mean(0)
    sw = np.zeros((x.shape[1], x.shape[1]))
    sb = np.zeros_like(sw)
    for c in np.unique(y):
        xc = x[y == c]
        mc = xc.mean(0)
        sw += (xc - mc).T @ (xc - mc) / n
        sb += len(xc) / n * np.outer(mc - mu, mc - mu)
    return float(np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10, hermitian=True)))


@pytest.mark.parametrize("p", [2, 5, 30])
def test_separation_matches_numpy(p):
    rng = np.random.default_rng(p)
    y = rng.integers(0, 4, size=80)
    x = rng.normal(size=(80, p)) + 1.5 * rng.normal(size=(4, p))[y]
    ours = separation(torch.from_numpy(x), torch.from_numpy(y))
    assert ours == pytest.approx(_numpy_d(x, y), rel=1e-9)


def test_separation_known_value_two_classes():
    m, s = 2.0, 0.5
    x = torch.tensor([[-m - s], [-m + s], [m - s], [m + s]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    assert separation(x, y) == pytest.approx(s**2 / m**2, rel=1e-12)
    # scale invariance, and an irrelevant extra constant dimension changes nothing
    assert separation(7 * x, y) == pytest.approx(s**2 / m**2, rel=1e-12)
    x2 = torch.cat([x, torch.ones_like(x)], dim=1)
    assert separation(x2, y) == pytest.approx(s**2 / m**2, rel=1e-12)


def test_separation_bad_input():
    x = torch.randn(6, 3, dtype=torch.float64)
    with pytest.raises(InputError, match="single sample"):
        separation(x, torch.tensor([0, 0, 1, 1, 1, 2]))
    with pytest.raises(InputError, match="two classes"):
        separation(x, torch.zeros(6, dtype=torch.long))
    same_means = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    with pytest.raises(InputError, match="between-class covariance is zero"):
        separation(same_means, torch.tensor([0, 0, 1, 1]))
    collapsed = torch.tensor([[0.0], [0.0], [3.0], [3.0]])
    with pytest.raises(InputError, match="within-class covariance is zero"):
        separation(collapsed, torch.tensor([0, 0, 1, 1]))
    with pytest.raises(InputError, match="NaN"):
        separation(torch.full((4, 2), float("nan")), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(InputError, match="integers"):
        separation(x[:4], torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_curve_shape_measures():
    straight = torch.tensor([3.0, 2.0, 1.0, 0.0])
    assert float(curvature(straight)) == pytest.approx(0.0, abs=1e-12)
    # deep-loaded (concave) curve: stays high then drops -> positive
    deep = torch.tensor([3.0, 3.0, 3.0, 0.0])
    assert float(curvature(deep)) == pytest.approx((1.0 + 2.0) / 2 / 3.0)
    shallow = torch.tensor([3.0, 0.0, 0.0, 0.0])
    assert float(curvature(shallow)) == pytest.approx(-(2.0 + 1.0) / 2 / 3.0)
    assert float(load_spread(torch.tensor([1.0, 1.0, 1.0]))) == 0.0
    assert float(load_centroid(torch.tensor([1.0, 1.0, 1.0]))) == pytest.approx(0.5)
    assert float(load_centroid(torch.tensor([0.0, 0.0, 2.0]))) == pytest.approx(1.0)
    with pytest.raises(InputError):
        curvature(torch.tensor([1.0, 1.0]))
    with pytest.raises(InputError):
        curvature(torch.tensor([1.0, 0.5, 1.0]))


def _data(n=60, d=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % c
    x = torch.randn(n, d, generator=g) + 2 * torch.randn(c, d, generator=g)[y]
    return x, y


def test_curve_on_sequential_matches_direct_features():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = _data()
    c = separation_curve(net, x, y)
    assert c.layers == ("input", "1", "3")
    with torch.no_grad():
        h1 = net[1](net[0](x))
        h2 = net[3](net[2](h1))
    direct = [separation(t, y) for t in (x, h1, h2)]
    np.testing.assert_allclose(c.separation.numpy(), direct, rtol=1e-10)
    np.testing.assert_allclose(c.load.numpy(), -np.diff(np.log(direct)), rtol=1e-10)
    # by name and by type give the same layers; outputs of Linear modules by type
    assert separation_curve(net, x, y, layers=["1", "3"]).layers == c.layers
    assert separation_curve(net, x, y, layers=[nn.Linear]).layers == ("input", "0", "2", "4")
    assert net.training  # mode restored


def test_hooks_on_cnn_and_reused_module():
    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(6, 6)
            self.b = nn.Linear(6, 6)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.b(self.act(self.a(x))))

    x, y = _data()
    feats = layer_features(Reuse(), x)
    assert list(feats) == ["act#0", "act#1"]
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.GELU(),
        nn.Flatten(),
        nn.Linear(4 * 16, 3),
    )
    xi = x[:, :4, None, None] * torch.ones(1, 1, 4, 4)  # (n, 4, 4, 4) -> use 1 channel
    c = separation_curve(cnn, xi[:, :1], y)
    assert len(c.layers) == 3 and torch.isfinite(c.log_separation).all()


def test_curve_bad_models():
    x, y = _data()
    with pytest.raises(InputError, match="no activation modules"):
        separation_curve(nn.Sequential(nn.Linear(6, 3)), x, y)
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
    with pytest.raises(InputError, match="no module named"):
        separation_curve(net, x, y, layers=["7"])
    with pytest.raises(InputError, match="three layers"):
        separation_curve(net, x, y)

    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 6)
            self.unused = nn.ReLU()

        def forward(self, x):
            return self.lin(x)

    with pytest.raises(InputError, match="never called"):
        separation_curve(Skip(), x, y, layers=["lin", "unused"])
