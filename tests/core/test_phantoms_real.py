"""Real test images and random-ellipse phantoms."""

import sys

import pytest
import torch

from inversa.core.errors import InputError
from inversa.core.optional import MissingDependencyError
from inversa.core.phantoms import random_ellipses, real_image, real_image_names


@pytest.mark.parametrize(("name", "size"), [("ct_small", 128), ("camera", 512), ("coins", 303)])
def test_real_images_native(name, size):
    img = real_image(name)
    assert img.shape == (size, size) and img.dtype == torch.float32
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    assert float(img.std()) > 0.05  # an image, not a constant


def test_real_image_resize_and_names():
    assert real_image_names() == ("ct_small", "camera", "coins")
    img = real_image("camera", size=64, dtype=torch.float64)
    assert img.shape == (64, 64) and img.dtype == torch.float64
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    # Antialiased downsampling keeps the mean.
    assert abs(float(img.mean()) - float(real_image("camera").mean())) < 0.01
    with pytest.raises(InputError, match="unknown real image"):
        real_image("brain")
    with pytest.raises(InputError, match="positive integer"):
        real_image("camera", size=0)


def test_ct_small_hounsfield_mapping():
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array.astype("float64") * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    ref = torch.from_numpy(hu + 1000.0).clamp_min(0.0)
    torch.testing.assert_close(real_image("ct_small", dtype=torch.float64), ref / ref.max())


def test_missing_dependency_names_the_imaging_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(MissingDependencyError, match=r"inversa\[imaging\]"):
        real_image("camera")


def test_random_ellipses_range_and_determinism():
    a = random_ellipses(64, count=3, generator=torch.Generator().manual_seed(0))
    b = random_ellipses(64, count=3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (3, 64, 64)
    torch.testing.assert_close(a, b)
    assert float(a.min()) == 0.0
    torch.testing.assert_close(a.amax(dim=(-2, -1)), torch.ones(3))
    assert not torch.equal(a[0], a[1])
    # Zero outside the body ellipse: the corners are empty.
    assert float(a[:, :3, :3].abs().max()) == 0.0


def test_random_ellipses_same_object_at_every_resolution():
    # Even pixels of a 2n image sit at the pixel centres of the n image.
    fine = random_ellipses(128, count=2, generator=torch.Generator().manual_seed(7))
    coarse = random_ellipses(64, count=2, generator=torch.Generator().manual_seed(7))
    sub = fine[:, ::2, ::2]
    torch.testing.assert_close(sub / sub.amax(dim=(-2, -1), keepdim=True), coarse)


def test_random_ellipses_bad_arguments():
    g = torch.Generator()
    with pytest.raises(InputError, match="count"):
        random_ellipses(16, count=0, generator=g)
    with pytest.raises(InputError, match="size"):
        random_ellipses(-1, count=1, generator=g)
