"""Objects holding a TiltGeometry expose its angles, transforms and point projection."""

import torch

from inversa.tomography import (
    SimulatedTiltSeries,
    TiltGeometry,
    TiltSeriesProjector,
    random_xf,
)


def _geometry() -> TiltGeometry:
    g = torch.Generator().manual_seed(0)
    xf = random_xf(3, shift_px=2.0, rotation_deg=4.0, generator=g)
    return TiltGeometry(angles=torch.tensor([-30.0, 0.0, 45.0], dtype=torch.float64), xf=xf)


def test_projector_and_simulation_read_their_geometry():
    geometry = _geometry()
    points = torch.tensor([[1.0, -2.0, 3.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    projector = TiltSeriesProjector(geometry=geometry, volume_shape=(4, 6, 6))
    sim = SimulatedTiltSeries(
        stack=torch.zeros(3, 6, 6),
        geometry=geometry,
        displacement=None,
        control=None,
        volume=torch.zeros(4, 6, 6),
        reference=torch.zeros(2, 2, 2),
        scene=None,
    )
    expected = geometry.project_points(points)
    for holder in (projector, sim):
        assert holder.angles is geometry.angles
        assert holder.xf is geometry.xf
        torch.testing.assert_close(holder.project_points(points), expected, rtol=0, atol=0)
    # the transforms matter: without them the points land elsewhere
    bare = TiltSeriesProjector(geometry=geometry.replace(xf=None), volume_shape=(4, 6, 6))
    assert bare.xf is None
    assert not torch.allclose(bare.project_points(points), expected)
