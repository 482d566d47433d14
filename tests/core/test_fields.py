import dataclasses
import itertools
import math

import pytest
import torch

from inversa.core.fields import (
    MLP,
    FourierFeatures,
    GaussianFourierConfig,
    HashGridConfig,
    HashGridEncoding,
    MLPConfig,
    NeuralField,
    NeuralFieldConfig,
    PositionalFourierConfig,
    SetMLP,
    SetMLPConfig,
    fourier_features,
    grid_coordinates,
    hash_grid_corners,
    hash_grid_encode,
    masked_mean,
)
from inversa.core.metrics import psnr
from inversa.core.phantoms import shepp_logan_2d

F64 = torch.float64
PRIMES = (1, 2654435761, 805459861)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _interior_points(n, dim, finest, seed=0):
    """Points whose fraction is in [0.1, 0.9] at every level whose resolution divides ``finest``."""
    g = _gen(seed)
    cell = torch.randint(0, finest, (n, dim), generator=g)
    u = 0.2 + 0.6 * torch.rand(n, dim, generator=g, dtype=F64)
    return (cell + u) / finest


# --- configs -----------------------------------------------------------------------------


def test_config_resolutions_and_layout():
    c = HashGridConfig(dim=3, n_levels=16, log2_table_size=19, base_resolution=16)
    assert c.resolutions[0] == 16 and c.resolutions[-1] == 2048
    assert list(c.resolutions) == sorted(c.resolutions)
    assert c.out_features == 32
    # a level is dense exactly when its (N + 1)^3 vertices fit in 2^19 rows
    assert c.dense == tuple((n + 1) ** 3 <= 2**19 for n in c.resolutions)
    sizes = [b - a for a, b in itertools.pairwise(c.level_offsets)]
    assert sizes == [min((n + 1) ** 3, 2**19) for n in c.resolutions]
    with pytest.raises(ValueError):
        HashGridConfig(dim=4)
    with pytest.raises(ValueError):
        HashGridConfig(dim=2, base_resolution=32, max_resolution=16)
    with pytest.raises(TypeError):
        HashGridConfig(2)  # keyword-only


# --- hash grid: gradients -----------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3])
def test_hash_grid_gradcheck_table_and_coords(dim):
    # levels 2, 4, 8; the first is dense, the others hashed into 2^5 rows
    c = HashGridConfig(
        dim=dim, n_levels=3, n_features=2, log2_table_size=5, base_resolution=2, max_resolution=8
    )
    assert c.dense[0] and not c.dense[-1]
    table = torch.randn(c.table_rows, 2, generator=_gen(1), dtype=F64, requires_grad=True)
    coords = _interior_points(4, dim, 8).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t, x: hash_grid_encode(x, t, config=c), (table, coords), atol=1e-8
    )


# --- hash grid: exactness on dense levels ------------------------------------------------


@pytest.mark.parametrize("dim", [2, 3])
def test_dense_level_vertex_returns_its_row(dim):
    c = HashGridConfig(
        dim=dim, n_levels=2, n_features=3, log2_table_size=12, base_resolution=3, max_resolution=5
    )
    assert all(c.dense)
    table = torch.randn(c.table_rows, 3, generator=_gen(2), dtype=F64)
    for level, n in enumerate(c.resolutions):
        vertices = torch.tensor(list(itertools.product(range(n + 1), repeat=dim)))  # (V, d)
        coords = vertices.to(F64) / n
        out = hash_grid_encode(coords, table, config=c)[:, 3 * level : 3 * level + 3]
        strides = torch.tensor([(n + 1) ** k for k in range(dim)])  # documented layout, x first
        rows = c.level_offsets[level] + (vertices * strides).sum(-1)
        torch.testing.assert_close(out, table[rows], rtol=0, atol=1e-12)


def test_dense_levels_reproduce_linear_functions():
    c = HashGridConfig(
        dim=3, n_levels=3, n_features=2, log2_table_size=9, base_resolution=2, max_resolution=6
    )
    assert all(c.dense)
    g = _gen(3)
    a, b = torch.randn(2, 3, generator=g, dtype=F64), torch.randn(2, generator=g, dtype=F64)
    table = torch.empty(c.table_rows, 2, dtype=F64)
    for level, n in enumerate(c.resolutions):
        vertices = torch.tensor(list(itertools.product(range(n + 1), repeat=3)))
        rows = c.level_offsets[level] + (vertices * torch.tensor([1, n + 1, (n + 1) ** 2])).sum(-1)
        table[rows] = vertices.to(F64) / n @ a.T + b
    coords = torch.rand(500, 3, generator=g, dtype=F64)
    out = hash_grid_encode(coords, table, config=c).reshape(500, 3, 2)
    expected = (coords @ a.T + b).unsqueeze(1).expand(500, 3, 2)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


# --- hash grid: hashing -------------------------------------------------------------------


def test_hashed_rows_in_range_and_match_instant_ngp_hash():
    c = HashGridConfig(
        dim=3, n_levels=4, n_features=2, log2_table_size=8, base_resolution=16, max_resolution=512
    )
    assert not any(c.dense)
    g = _gen(4)
    coords = torch.cat(
        [
            torch.rand(4000, 3, generator=g),
            torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [-0.5, 2.0, 1.0]]),  # edges, outside
        ]
    )
    rows, weights = hash_grid_corners(coords, config=c)
    assert rows.shape == weights.shape == (4003, 4, 8)
    for level, n in enumerate(c.resolutions):
        lo, hi = c.level_offsets[level], c.level_offsets[level + 1]
        r = rows[:, level]
        assert r.min() >= lo and r.max() < hi
        assert r.unique().numel() > 0.9 * (hi - lo)  # the hash spreads over the level's block
        # independent reference for a few points: the lower corner (corner 0)
        for p in coords[:5].clamp(0, 1).tolist():
            cell = [min(math.floor(x * n), n - 1) for x in p]
            h = 0
            for k in range(3):
                h ^= cell[k] * PRIMES[k]
            assert rows[coords[:, 0] == p[0]][0, level, 0].item() == lo + h % 2**8
    assert weights.min() >= 0
    torch.testing.assert_close(weights.sum(-1), torch.ones(4003, 4))


def test_nan_point_gives_nan_not_an_out_of_range_read():
    # a dense level would index far outside the table with a NaN cell
    c = HashGridConfig(
        dim=3, n_levels=2, n_features=2, log2_table_size=9, base_resolution=2, max_resolution=16
    )
    assert c.dense == (True, False)
    x = torch.tensor([[0.5, float("nan"), 0.5], [0.5, 0.5, 0.5]])
    out = hash_grid_encode(x, torch.zeros(c.table_rows, 2), config=c)
    assert out[0].isnan().all() and not out[1].isnan().any()


# --- shapes, dtype, device ----------------------------------------------------------------


def _small_field(dim=2, encoding="hash", out=1, seed=0):
    if encoding == "hash":
        enc = HashGridConfig(
            dim=dim, n_levels=4, n_features=2, log2_table_size=10, base_resolution=4,
            max_resolution=32, init_scale=0.1,
        )  # fmt: skip
    elif encoding == "gaussian":
        enc = GaussianFourierConfig(dim=dim, n_frequencies=16, sigma=3.0)
    else:
        enc = PositionalFourierConfig(dim=dim, n_frequencies=4, min_frequency=1, max_frequency=8)
    mlp = MLPConfig(in_features=enc.out_features, out_features=out, hidden_features=(16, 16))
    return NeuralField(NeuralFieldConfig(encoding=enc, mlp=mlp), generator=_gen(seed))


@pytest.mark.parametrize("encoding", ["hash", "gaussian", "positional"])
def test_batching_shapes(encoding):
    field = _small_field(dim=3, encoding=encoding, out=2)
    x = torch.rand(2, 3, 5, 3, generator=_gen(5))
    feats = field.encoding(x)
    assert feats.shape == (2, 3, 5, field.encoding.out_features)
    torch.testing.assert_close(feats.reshape(30, -1), field.encoding(x.reshape(30, 3)))
    assert field(x).shape == (2, 3, 5, 2)
    assert field(torch.rand(0, 3)).shape == (0, 2)
    assert field(x[0, 0, 0]).shape == (2,)


def test_dtype_and_device_follow_the_input():
    field = _small_field(dim=2)
    x = torch.rand(7, 2, generator=_gen(6), dtype=F64)
    assert field.encoding(x).dtype == F64  # the float32 table is cast to the input's dtype
    assert FourierFeatures(GaussianFourierConfig(dim=2, n_frequencies=3))(x).dtype == F64
    field64 = field.double()
    assert field64(x).dtype == F64
    assert field64.sample_grid((3, 4)).dtype == F64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    field = _small_field(dim=3, out=2)
    x = torch.rand(1000, 3, generator=_gen(7))
    on_gpu = field.to("cuda")(x.cuda())
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), field.cpu()(x), atol=1e-5, rtol=1e-5)


# --- Fourier features ---------------------------------------------------------------------


def test_gaussian_fourier_features_seeded_and_correct():
    c = GaussianFourierConfig(dim=3, n_frequencies=8, sigma=2.0)
    a, b = FourierFeatures(c, generator=_gen(8)), FourierFeatures(c, generator=_gen(8))
    other = FourierFeatures(c, generator=_gen(9))
    torch.testing.assert_close(a.frequencies, b.frequencies)
    assert not torch.allclose(a.frequencies, other.frequencies)
    x = torch.rand(4, 3, generator=_gen(10), dtype=F64)
    out = a(x)
    assert out.shape == (4, 16)
    phase = 2 * math.pi * x @ a.frequencies.to(F64).T
    torch.testing.assert_close(out, torch.cat([phase.sin(), phase.cos()], -1))


def test_positional_fourier_features_log_spaced_per_axis():
    c = PositionalFourierConfig(dim=2, n_frequencies=4, min_frequency=1.0, max_frequency=8.0)
    enc = FourierFeatures(c)
    x = torch.rand(5, 2, generator=_gen(11), dtype=F64)
    out = enc(x)
    assert out.shape == (5, 2 * 4 * 2) == (5, c.out_features)
    for k, (j, f) in itertools.product(range(2), enumerate([1.0, 2.0, 4.0, 8.0])):
        col = 4 * k + j  # axis-major: the m frequencies along x, then along y
        torch.testing.assert_close(out[:, col], torch.sin(2 * math.pi * f * x[:, k]))
        torch.testing.assert_close(out[:, 8 + col], torch.cos(2 * math.pi * f * x[:, k]))
    with pytest.raises(ValueError):
        fourier_features(x, torch.ones(3, 3))


# --- MLP, SetMLP ---------------------------------------------------------------------------


def test_mlp_init_residual_and_validation():
    c = MLPConfig(in_features=5, out_features=2, hidden_features=(8, 8), activation="tanh")
    mlp = MLP(c, generator=_gen(12))
    first, last = mlp.layers[0], mlp.layers[-1]
    assert first.weight.abs().max() <= 5 / 3 * math.sqrt(3 / 5)
    assert first.weight.abs().max() > 0.5 * 5 / 3 * math.sqrt(3 / 5)
    assert last.weight.abs().max() <= 1 / math.sqrt(8)
    assert all(layer.bias.abs().max() == 0 for layer in mlp.layers)
    same = MLP(c, generator=_gen(12))
    torch.testing.assert_close(same.layers[1].weight, mlp.layers[1].weight)
    # the residual skip adds h around the 8 -> 8 layer
    res = MLP(dataclasses.replace(c, residual=True), generator=_gen(12))
    x = torch.randn(3, 5, generator=_gen(13))
    h1 = torch.tanh(first(x))
    h2 = h1 + torch.tanh(mlp.layers[1](h1))
    torch.testing.assert_close(res(x), last(h2))
    sig = MLP(dataclasses.replace(c, output_activation="sigmoid"), generator=_gen(12))
    torch.testing.assert_close(sig(x), torch.sigmoid(mlp(x)))
    with pytest.raises(ValueError):
        MLPConfig(in_features=2, out_features=1, activation="swish")
    with pytest.raises(ValueError):
        MLPConfig(in_features=2, out_features=1, hidden_features=[4])
    with pytest.raises(ValueError):
        NeuralFieldConfig(
            encoding=GaussianFourierConfig(dim=2, n_frequencies=3),
            mlp=MLPConfig(in_features=5, out_features=1),
        )


def _set_mlp():
    element = MLPConfig(in_features=4, out_features=6, hidden_features=(12,))
    head = MLPConfig(in_features=6, out_features=3, hidden_features=(8,))
    return SetMLP(SetMLPConfig(element=element, head=head), generator=_gen(14))


def test_set_mlp_permutation_invariant():
    net = _set_mlp()
    x = torch.randn(2, 5, 7, 4, generator=_gen(15))
    perm = torch.randperm(7, generator=_gen(16))
    out = net(x)
    assert out.shape == (2, 5, 3)
    torch.testing.assert_close(net(x[:, :, perm]), out)
    # not a trivially constant map: changing one element changes the result
    y = x.clone()
    y[..., 0, :] += 1
    assert not torch.allclose(net(y), out)


def test_set_mlp_ignores_masked_elements():
    net = _set_mlp()
    x = torch.randn(3, 6, 4, generator=_gen(17), requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 1], [0, 1, 0, 0, 0, 0]]).bool()
    out = net(x, mask)
    junk = x.detach().clone()
    junk[~mask] = float("nan")
    torch.testing.assert_close(net(junk, mask), out.detach())
    for i in range(3):  # the same as the set of kept elements alone
        torch.testing.assert_close(net(x[i, mask[i]]), out[i])
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[~mask] == 0).all()
    # every element dropped: the mean is zero, not NaN
    torch.testing.assert_close(
        masked_mean(torch.ones(2, 3, 4), torch.zeros(2, 3).bool()), torch.zeros(2, 4)
    )


# --- neural field -------------------------------------------------------------------------


def test_grid_coordinates_layout():
    c = grid_coordinates((2, 3, 4), dtype=F64)
    assert c.shape == (2, 3, 4, 3)
    torch.testing.assert_close(c[1, 2, 3], torch.tensor([3.5 / 4, 2.5 / 3, 1.5 / 2], dtype=F64))
    torch.testing.assert_close(c[0, 0, :, 0], (torch.arange(4, dtype=F64) + 0.5) / 4)


@pytest.mark.parametrize("shape", [(7, 9), (3, 4, 5)])
def test_sample_grid_chunked_equals_unchunked(shape):
    field = _small_field(dim=len(shape), out=2)
    whole = field.sample_grid(shape, chunk=10**6)
    assert whole.shape == (*shape, 2)
    # chunks change only the float32 rounding of the batched matrix products
    torch.testing.assert_close(field.sample_grid(shape, chunk=5), whole, rtol=0, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(field(grid_coordinates(shape)), whole)


def test_neural_field_fits_an_image():
    # the finest level (32 cells) is coarser than the 48-pixel image and two levels are
    # hashed with collisions, so the fit cannot just copy pixels into table rows
    image = shepp_logan_2d(48)
    enc = HashGridConfig(
        dim=2, n_levels=4, n_features=2, log2_table_size=8, base_resolution=4, max_resolution=32
    )
    assert enc.dense == (True, True, False, False)
    mlp = MLPConfig(in_features=enc.out_features, out_features=1, hidden_features=(32,))
    field = NeuralField(NeuralFieldConfig(encoding=enc, mlp=mlp), generator=_gen(18))
    coords = grid_coordinates(image.shape)
    opt = torch.optim.Adam(field.parameters(), lr=1e-2)
    start = psnr(field.sample_grid(image.shape)[..., 0], image)
    for _ in range(200):
        opt.zero_grad()
        loss = (field(coords)[..., 0] - image).square().mean()
        loss.backward()
        opt.step()
    final = psnr(field.sample_grid(image.shape)[..., 0], image)
    assert start < 15 and final > 28, (start, final)


def test_hash_grid_module_matches_kernel():
    enc = HashGridEncoding(HashGridConfig(dim=2, n_levels=3, log2_table_size=6), generator=_gen(19))
    assert enc.table.abs().max() <= 1e-4
    x = torch.rand(11, 2, generator=_gen(20))
    torch.testing.assert_close(enc(x), hash_grid_encode(x, enc.table, config=enc.config))


@pytest.mark.parametrize("encoding", ["hash", "gaussian", "positional"])
def test_config_round_trips_through_json(encoding):
    import json

    field = _small_field(dim=2, encoding=encoding, out=3)
    text = json.dumps(field.config.to_dict())
    config = NeuralFieldConfig.from_dict(json.loads(text))
    assert config == field.config
    rebuilt = NeuralField(config)
    rebuilt.load_state_dict(field.state_dict())
    x = torch.rand(5, 2, generator=_gen(21))
    torch.testing.assert_close(rebuilt(x), field(x))
    with pytest.raises(ValueError):
        NeuralFieldConfig.from_dict({"encoding": {"kind": "wavelets"}, "mlp": {}})
