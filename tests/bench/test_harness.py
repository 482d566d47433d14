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


def _mmapped_bytes_after_reuse() -> tuple[int]:
    """Free an 8 MiB block, then hold a 4 MiB one: glibc's bytes in own mappings."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p  # a pointer, not a truncated int
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    big = libc.malloc(8 << 20)
    libc.free(big)  # glibc's adaptive threshold now rises to 8 MiB
    block = libc.malloc(4 << 20)
    mapped = libc.mallinfo2().hblkhd
    libc.free(block)
    return (int(mapped),)


def test_spawned_probe_fixes_the_mmap_threshold():
    import ctypes

    from inversa.bench._harness import SpawnedProbe

    try:
        ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018 (glibc >= 2.33)
    except (OSError, AttributeError):
        pytest.skip("needs glibc's mallinfo2")
    with SpawnedProbe() as probe:
        (adaptive,) = probe(_mmapped_bytes_after_reuse)
    with SpawnedProbe(mmap_threshold=128 * 1024) as probe:
        (fixed,) = probe(_mmapped_bytes_after_reuse)
    assert fixed >= 4 << 20  # the 4 MiB block has its own mapping
    assert adaptive < 4 << 20  # after the 8 MiB free it came from the heap
