"""The shared benchmark helpers: figures, the ASTRA check and its 2-D projector."""

import sys

import numpy as np
import pytest

from inversa.bench._harness import Astra2D, has_astra, pyplot, save_figure
from inversa.core.errors import OutputExistsError


def test_save_figure_writes_png_refuses_overwrite_and_closes(tmp_path):
    plt = pyplot()
    path = tmp_path / "f.png"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert save_figure(fig, path, force=False) == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    fig, _ = plt.subplots()
    with pytest.raises(OutputExistsError):
        save_figure(fig, path, force=False)
    save_figure(fig, path, force=True)
    assert not plt.fignum_exists(fig.number)


def test_has_astra_is_false_when_astra_does_not_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "astra", None)  # makes `import astra` fail
    assert has_astra() is False


def test_astra_projector_adjoint_and_iterations():
    if not has_astra():
        pytest.skip("ASTRA (bench extra) not installed")
    rng = np.random.default_rng(0)
    n, n_det, angles = 16, 23, np.linspace(0.0, 180.0, 12, endpoint=False)
    peer = Astra2D(n, angles, n_det)
    try:
        x = rng.random((n, n)).astype(np.float32)
        y = rng.random((12, n_det)).astype(np.float32)
        lhs = float(np.vdot(peer.forward(x).astype(np.float64), y))
        rhs = float(np.vdot(x, peer.backproject(y).astype(np.float64)))
        assert abs(lhs - rhs) <= 1e-4 * abs(lhs)
        # n_iter reaches ASTRA: more SIRT iterations fit the data better.
        sino = peer.forward(x)
        errors = [
            np.linalg.norm(peer.forward(peer.run("SIRT", sino=sino, n_iter=k)) - sino)
            for k in (1, 30)
        ]
        assert errors[1] < 0.5 * errors[0]
    finally:
        peer.close()
