"""``inversa bench lofi``: LoFi beside FBPConvNet (a U-Net on the same input), FBP, TV and PnP.

One run. For each task (sparse-view CT, limited-angle CT, low-dose CT, Gaussian denoising)
LoFi and the U-Net are trained on the same random-ellipse images (at most 10), for the same
steps, with the same L1 loss and optimiser; both are scored (PSNR with data range 1, SSIM)
on held-out ellipses (``ind``) and on the real images CT_small, camera and coins (``ood``),
beside the network input itself (``fbp``: the FBP, or the noisy image for denoising).

Memory and time: training peak memory (growth of the resident set during one step, in a
spawned process whose freed heap is trimmed and whose peak is reset first: the image, its
input, activations, gradients and Adam's state; not the interpreter or the weights) and
seconds per step at 256^2, 512^2 and 1024^2 for both models, one image per step, LoFi with
the training number of query pixels. Inference at 4x the training size (512^2 for 128^2)
of the denoising models on camera, measured the same way.

Plug-and-play: sparse-view CT (30 views, 1% noise) of CT_small at 256^2, twice the training
resolution: PnP-ADMM with the LoFi denoiser, PnP-ADMM with a TV denoiser, and TV-regularised
reconstruction (FISTA); every weight is chosen on a held-out ellipse image at 256^2.
"""

from __future__ import annotations

import base64
import contextlib
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from inversa.bench._harness import BenchReport, SpawnedProbe, measure_fresh, save_figure

__all__ = ["figures", "run", "training_memory"]

TASK_KEYS = {
    "sparse-ct": "sparse_ct",
    "limited-ct": "limited_ct",
    "lowdose-ct": "lowdose_ct",
    "denoise": "denoise",
}
SIZES = (256, 512, 1024)
FIGURE_IMAGES = ("ct_small", "camera")
SPLIT_SEEDS = {"ind": 2024, "ood": 2025}


def _pack(img: torch.Tensor) -> dict:
    """Encode an image in [0, 1] as 8-bit zlib-compressed base64 text (for the JSON)."""
    arr = np.round(np.clip(img.detach().cpu().numpy(), 0.0, 1.0) * 255).astype(np.uint8)
    return {"shape": list(arr.shape), "u8": base64.b64encode(zlib.compress(arr.tobytes())).decode()}


def _unpack(packed: dict) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(packed["u8"]))
    return np.frombuffer(raw, dtype=np.uint8).reshape(packed["shape"]) / 255.0


def _train_step_point(kind: str, size: int, config, steps: int) -> tuple[float, float]:
    """Peak MiB of one training step and median seconds per step (in a :class:`SpawnedProbe`)."""
    from inversa.core.nets import UNet
    from inversa.lofi import LoFi

    torch.manual_seed(0)
    model = LoFi(config.model) if kind == "lofi" else UNet(config.unet())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    q = config.queries

    def step() -> None:
        g = torch.Generator().manual_seed(1)
        target = torch.rand(size, size, generator=g)
        inp = target + 0.1 * torch.randn(size, size, generator=g)
        opt.zero_grad(set_to_none=True)
        if kind == "lofi":
            idx = torch.randint(size * size, (q,), generator=g)
            rows, cols = idx // size, idx % size
            coords = torch.stack([(cols + 0.5) / size, (rows + 0.5) / size], dim=-1)
            loss = (model(inp[None, None], coords[None])[0] - target[rows, cols]).abs().mean()
        else:
            loss = (model(inp[None, None])[0, 0] - target).abs().mean()
        loss.backward()
        opt.step()

    _, peak, first = measure_fresh(step)  # the first step also creates Adam's state
    times = [first]
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return peak, float(np.median(times[1:] if steps else times))


def _inference_point(kind: str, model, image: torch.Tensor) -> tuple[np.ndarray, float, float]:
    """``(output, peak MiB, seconds)`` of one reconstruction by ``kind`` (``lofi``/``unet``)."""
    from inversa.lofi import predict, unet_predict

    run = predict if kind == "lofi" else unet_predict
    out, peak, sec = measure_fresh(lambda: run(model, image))
    return out.numpy(), peak, sec


def training_memory(
    sizes: tuple[int, ...] = SIZES,
    *,
    config: object | None = None,
    steps: int = 2,
    probe: SpawnedProbe | None = None,
) -> dict[str, float]:
    """Training peak memory and seconds per step of LoFi and the U-Net at ``sizes``.

    One image per step; LoFi with ``config.queries`` query pixels at every size. Each point
    runs in a spawned process (:class:`SpawnedProbe`): the peak is the growth of the resident set
    during the first step (activations, gradients, Adam's state, the data), the time the
    median of ``steps`` further steps.

    Parameters
    ----------
    sizes
        Image sizes (pixels across).
    config
        A `inversa.lofi.TrainingConfig`: the networks and the number of queries (default:
        the full benchmark's).
    steps
        Timed steps after the first.
    probe
        A running probe to reuse (default: a fresh one for this call).

    Returns
    -------
    dict
        ``peak_mib_{lofi,unet}_{size}`` and ``seconds_per_step_{lofi,unet}_{size}``.
    """
    from inversa.lofi import TrainingConfig

    cfg = TrainingConfig(steps=500) if config is None else config
    with contextlib.ExitStack() as stack:
        if probe is None:
            probe = stack.enter_context(SpawnedProbe())
        out: dict[str, float] = {}
        for size in sizes:
            for kind in ("lofi", "unet"):
                peak, sec = probe(_train_step_point, kind, size, cfg, steps)
                out[f"peak_mib_{kind}_{size}"] = round(peak, 1)
                out[f"seconds_per_step_{kind}_{size}"] = round(sec, 4)
    return out


def _scores(pred: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    from inversa.core import metrics

    p = float(metrics.psnr(pred, ref, data_range=1.0, ndim=2).mean())
    s = float(metrics.ssim(pred.double(), ref.double(), data_range=1.0, ndim=2).mean())
    return p, s


def _test_sets(size: int, n_ind: int) -> dict[str, torch.Tensor]:
    from inversa.core.phantoms import random_ellipses, real_image, real_image_names

    ind = random_ellipses(size, count=n_ind, generator=torch.Generator().manual_seed(12345))
    ood = torch.stack([real_image(n, size=size) for n in real_image_names()])
    return {"ind": ind, "ood": ood}


def _pnp(v: dict, figs: dict, denoiser_model, *, quick: bool) -> None:
    """PnP-ADMM (LoFi and TV denoisers) and TV reconstruction at twice the training size."""
    from inversa.core.phantoms import random_ellipses, real_image
    from inversa.lofi import (
        PnPConfig,
        operator_norm_sq,
        pnp_admm,
        predict,
        task_config,
        task_operator,
        tv_denoise,
        tv_reconstruct,
    )
    from inversa.tomography import fbp

    n = 2 * denoiser_model.config.reference_size
    task = task_config("sparse-ct")
    op = task_operator(task, n)
    lip = operator_norm_sq(op)
    n_iter = 8 if quick else 20
    truth = {
        "val": random_ellipses(n, count=1, generator=torch.Generator().manual_seed(777))[0],
        "test": real_image("ct_small", size=n),
    }
    data = {}
    for key, x in truth.items():
        y = op.forward(x)
        g = torch.Generator().manual_seed(31 if key == "val" else 32)
        y = y + 0.01 * float(y.abs().mean()) * torch.randn(y.shape, generator=g)
        data[key] = (y, fbp(y, op))

    def psnr_of(key, x):
        return _scores(x, truth[key])[0]

    def lofi_den(z):
        return predict(denoiser_model, z)

    methods = {
        "pnp_lofi": (
            [{"rho": r} for r in ((0.003, 0.01) if quick else (0.003, 0.01, 0.03))],
            lambda key, p: pnp_admm(
                op,
                data[key][0],
                lofi_den,
                x0=data[key][1],
                config=PnPConfig(rho=p["rho"], n_iter=n_iter),
                norm_sq=lip,
            ),
        ),
        "pnp_tv": (
            [
                {"rho": r, "w": w}
                for r in ((0.003, 0.01) if quick else (0.003, 0.01, 0.03))
                for w in ((0.01, 0.03) if quick else (0.01, 0.02, 0.05))
            ],
            lambda key, p: pnp_admm(
                op,
                data[key][0],
                lambda z: tv_denoise(z, p["w"]),
                x0=data[key][1],
                config=PnPConfig(rho=p["rho"], n_iter=n_iter),
                norm_sq=lip,
            ),
        ),
        "tv": (
            [{"lam": lam} for lam in ((1e-4, 3e-4) if quick else (1e-4, 3e-4, 1e-3, 3e-3))],
            lambda key, p: tv_reconstruct(
                op, data[key][0], lam=p["lam"], n_iter=30 if quick else 100, norm_sq=lip
            ),
        ),
    }
    chosen = {}
    for name, (grid, solve) in methods.items():
        best = max(grid, key=lambda p, solve=solve: psnr_of("val", solve("val", p)))
        t0 = time.perf_counter()
        rec = solve("test", best)
        chosen[name] = {"params": best, "seconds": round(time.perf_counter() - t0, 2)}
        v[f"psnr_{name}_db"] = round(psnr_of("test", rec), 3)
        figs[f"pnp_{name}"] = _pack(rec)
    v["psnr_pnp_fbp_db"] = round(psnr_of("test", data["test"][1]), 3)
    figs["pnp_fbp"] = _pack(data["test"][1])
    figs["pnp_truth"] = _pack(truth["test"])
    v["pnp_settings"] = {"size": n, "views": task.n_angles, "noise": "1% of mean |y|"} | chosen


def run(*, quick: bool = False, device: str = "cpu") -> BenchReport:
    """Run the LoFi benchmark.

    Parameters
    ----------
    quick
        64^2 training, 60 steps, small networks, one step per memory point (under a
        minute on 2 cores); the memory sizes stay 256, 512 and 1024.
    device
        Torch device of training and inference (memory and step times are always CPU).
    """
    from inversa.core.phantoms import real_image
    from inversa.lofi import (
        TASKS,
        TrainingConfig,
        predict,
        quick_config,
        simulate,
        task_config,
        train_lofi,
        train_unet,
        unet_predict,
    )

    t_start = time.perf_counter()
    report = BenchReport(name="lofi", quick=quick)
    v = report.values
    cfg = quick_config() if quick else TrainingConfig(steps=500)
    v["training_images"] = cfg.n_images
    v["training_size"] = cfg.size
    v["training_steps"] = cfg.steps
    v["queries_per_step"] = cfg.queries
    sets = _test_sets(cfg.size, 2 if quick else 6)
    figs: dict[str, dict] = {}
    for name in FIGURE_IMAGES:
        figs[f"truth_{name}"] = _pack(real_image(name, size=cfg.size))
    models = {}
    for task_name in TASKS:
        task = task_config(task_name)
        tk = TASK_KEYS[task_name]
        lofi, linfo = train_lofi(task, cfg, device=device)
        unet, uinfo = train_unet(task, cfg, device=device)
        models[task_name] = (lofi, unet)
        v[f"training_seconds_lofi_{tk}"] = round(linfo["training_seconds"], 1)
        v[f"training_seconds_unet_{tk}"] = round(uinfo["training_seconds"], 1)
        v[f"final_loss_lofi_{tk}"] = round(linfo["final_loss"], 5)
        v[f"final_loss_unet_{tk}"] = round(uinfo["final_loss"], 5)
        v["parameters_lofi"], v["parameters_unet"] = linfo["parameters"], uinfo["parameters"]
        for split, truth in sets.items():
            g = torch.Generator().manual_seed(SPLIT_SEEDS[split])
            _, inp = simulate(task, truth, generator=g)
            preds = {
                "fbp": inp,
                "lofi": predict(lofi, inp).cpu(),
                "unet": unet_predict(unet, inp).cpu(),
            }
            for model_key, pred in preds.items():
                p, s = _scores(pred, truth)
                v[f"psnr_{model_key}_{tk}_{split}"] = round(p, 3)
                v[f"ssim_{model_key}_{tk}_{split}"] = round(s, 4)
            if split == "ood":
                for i, name in enumerate(FIGURE_IMAGES):  # real_image_names() order
                    for model_key, pred in preds.items():
                        figs[f"{tk}_{model_key}_{name}"] = _pack(pred[i])
        for split in ("ind", "ood"):
            report.compare(
                f"PSNR {task_name} {split} (LoFi vs U-Net)",
                v[f"psnr_lofi_{tk}_{split}"],
                v[f"psnr_unet_{tk}_{split}"],
                unit="dB",
                higher_is_better=True,
            )

    # Bilinear instead of bicubic sampling, one task (full run only).
    if not quick:
        task = task_config("sparse-ct")
        bil, _ = train_lofi(task, replace(cfg, model=replace(cfg.model, mode="bilinear")))
        for split, truth in sets.items():
            g = torch.Generator().manual_seed(SPLIT_SEEDS[split])
            _, inp = simulate(task, truth, generator=g)
            p, s = _scores(predict(bil, inp), truth)
            v[f"psnr_lofi_bilinear_sparse_ct_{split}"] = round(p, 3)

    # Inference at 4x the training size (512^2 for 128^2) of the denoising models (camera).
    hi = 4 * cfg.size
    truth = real_image("camera", size=hi)[None]
    task = task_config("denoise")
    _, inp = simulate(task, truth, generator=torch.Generator().manual_seed(5))
    lofi, unet = (m.to("cpu") for m in models["denoise"])  # measured on the CPU
    with SpawnedProbe() as probe:
        for key, model in (("lofi", lofi), ("unet", unet)):
            pred, peak, sec = probe(_inference_point, key, model, inp)
            v[f"psnr_{key}_denoise_camera_{hi}"] = round(_scores(pred, truth)[0], 3)
            v[f"inference_seconds_{key}_{hi}"] = round(sec, 2)
            v[f"inference_peak_mib_{key}_{hi}"] = round(peak, 1)
        v[f"psnr_fbp_denoise_camera_{hi}"] = round(_scores(inp, truth)[0], 3)
        v["inference_size"] = hi

        # Training memory and seconds per step at 256, 512, 1024 (one image per step).
        v.update(training_memory(config=cfg, steps=1 if quick else 2, probe=probe))
    report.compare(
        "training peak MiB at 1024^2", v["peak_mib_lofi_1024"], v["peak_mib_unet_1024"], unit="MiB"
    )
    report.compare(
        "seconds per step at 1024^2",
        v["seconds_per_step_lofi_1024"],
        v["seconds_per_step_unet_1024"],
    )

    # Plug-and-play at twice the training resolution, with the denoising model.
    _pnp(v, figs, models["denoise"][0], quick=quick)
    report.compare(
        "PSNR PnP-LoFi vs TV (dB)",
        v["psnr_pnp_lofi_db"],
        v["psnr_tv_db"],
        unit="dB",
        higher_is_better=True,
    )
    v["torch_threads"] = torch.get_num_threads()
    v["total_seconds"] = round(time.perf_counter() - t_start, 1)
    v["images"] = figs
    return report


def figures(values: dict, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Real-image reconstructions of every method, PnP at 2x resolution, memory vs size."""
    from inversa.bench._harness import pyplot

    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = values["images"]
    written = []

    cols = [
        ("truth", "target"),
        ("fbp", "input (FBP / noisy)"),
        ("unet", "U-Net"),
        ("lofi", "LoFi"),
    ]
    rows = [(tk, name) for tk in TASK_KEYS.values() for name in FIGURE_IMAGES]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(2.2 * len(cols), 2.2 * len(rows)))
    for r, (tk, name) in enumerate(rows):
        for c, (key, title) in enumerate(cols):
            ax = axes[r, c]
            img = _unpack(figs[f"truth_{name}"] if key == "truth" else figs[f"{tk}_{key}_{name}"])
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{tk}\n{name}", fontsize=8)
    fig.tight_layout()
    written.append(save_figure(fig, out_dir / "lofi_real_images.png", force=force))

    names = [
        ("pnp_truth", "CT_small"),
        ("pnp_fbp", "FBP"),
        ("pnp_tv", "TV"),
        ("pnp_pnp_tv", "PnP-TV"),
        ("pnp_pnp_lofi", "PnP-LoFi"),
    ]
    keys = {
        "pnp_fbp": "psnr_pnp_fbp_db",
        "pnp_tv": "psnr_tv_db",
        "pnp_pnp_tv": "psnr_pnp_tv_db",
        "pnp_pnp_lofi": "psnr_pnp_lofi_db",
    }
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.9))
    for ax, (key, title) in zip(axes, names, strict=True):
        ax.imshow(_unpack(figs[key]), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        label = title if key not in keys else f"{title} {values[keys[key]]:.2f} dB"
        ax.set_title(label, fontsize=9)
    fig.tight_layout()
    written.append(save_figure(fig, out_dir / "lofi_pnp.png", force=force))

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for kind, label in (("lofi", "LoFi"), ("unet", "U-Net (FBPConvNet)")):
        mem = [values[f"peak_mib_{kind}_{s}"] for s in SIZES]
        sec = [values[f"seconds_per_step_{kind}_{s}"] for s in SIZES]
        a1.plot(SIZES, mem, "o-", label=label)
        a2.plot(SIZES, sec, "o-", label=label)
    for ax, ylabel in ((a1, "training peak memory (MiB)"), (a2, "seconds per step")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(list(SIZES), [f"{s}$^2$" for s in SIZES])
        ax.set_xlabel("image size")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    written.append(save_figure(fig, out_dir / "lofi_memory.png", force=force))
    return written
