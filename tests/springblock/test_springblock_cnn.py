import pytest
import torch

from inversa.core.errors import InputError
from inversa.springblock import Dataset, NetworkSetting, make_cnn, separation_curve, train_cnns


def _tiny_images(seed: int = 0) -> Dataset:
    # two classes of 6x6 images: a bright left or right half, plus noise
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(40) % 2
    x = torch.zeros(40, 6, 6)
    x[y == 0, :, :3] = 1.0
    x[y == 1, :, 3:] = 1.0
    x = x + 0.3 * torch.randn(x.shape, generator=g)
    return Dataset(
        name="halves",
        x_train=x[:30].reshape(30, 36),
        y_train=y[:30],
        x_test=x[30:].reshape(10, 36),
        y_test=y[30:],
        classes=2,
    )


def test_cnn_shapes_and_hooks():
    net = make_cnn(image_shape=(6, 6), classes=3, channels=2, depth=4, alpha=0.1, seed=1)
    assert net(torch.zeros(5, 1, 6, 6)).shape == (5, 3)
    # same seed, same weights
    again = make_cnn(image_shape=(6, 6), classes=3, channels=2, depth=4, alpha=0.1, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), again.parameters(), strict=True))
    # the hook-based curve sees the input and the three LeakyReLUs
    d = _tiny_images()
    curve = separation_curve(net, d.x_train.reshape(30, 1, 6, 6), d.y_train)
    assert len(curve.layers) == 4 and curve.load.shape == (3,)
    with pytest.raises(InputError):
        make_cnn(image_shape=(6, 6), classes=3, depth=1)
    with pytest.raises(InputError):
        make_cnn(image_shape=(6, 6), classes=3, alpha=1.5)


def test_train_cnns_learns_and_measures():
    d = _tiny_images()
    settings = [NetworkSetting(alpha=0.0, noise=0.0, seed=0, lr=0.01), NetworkSetting(alpha=1.0)]
    tr = train_cnns(d, settings, image_shape=(6, 6), epochs=15, channels=2, depth=3)
    assert len(tr.curves) == 2 and tr.network_epochs == 30
    assert float(tr.train_accuracy[0]) == 1.0  # an easy task: learned
    # training improves the last layer's separation over the same network untrained
    init = make_cnn(image_shape=(6, 6), classes=2, channels=2, depth=3, alpha=0.0, seed=0)
    before = separation_curve(init, d.x_train.reshape(30, 1, 6, 6), d.y_train)
    assert float(tr.curves[0].log_separation[-1]) < float(before.log_separation[-1]) - 0.5
    assert torch.isfinite(tr.curvature).all()
    with pytest.raises(InputError, match="images"):
        train_cnns(d, settings, image_shape=(5, 5), epochs=1)
    with pytest.raises(InputError):
        train_cnns(d, [NetworkSetting(alpha=0.0, noise=1.5)], image_shape=(6, 6), epochs=1)
