"""``inversa bench tomography``: projector speed and FBP quality beside ASTRA and scikit-image.

Measures, in one run on the same machine:

- 2-D Radon forward and adjoint (512x512, 360 angles; quick: 256x256, 180 angles) against
  ASTRA's CPU 'linear' (Joseph) projector and scikit-image's ``radon``;
- 3-D tilt-series forward and adjoint (256^3, 61 tilts; quick: 128^3) with peak memory;
- FBP of the Shepp-Logan phantom (256x256, 180 angles, noise-free): PSNR of ours and of
  ASTRA's CPU FBP, each from its own projector's data;
- normalised adjoint errors of both operators in float64;
- when a GPU is present, the projector timings on CUDA too (``*_cuda_s`` keys).
"""

from __future__ import annotations

import numpy as np
import torch

from inversa.bench._harness import Astra2D, BenchReport, PeakMemory, best_time, has_astra
from inversa.core import metrics, phantoms
from inversa.tomography import Radon2D, TiltGeometry, TiltSeriesProjector, fbp

__all__ = ["adjoint_error", "run"]


def adjoint_error(op, *, generator: torch.Generator) -> float:
    """Normalised dot-product error ``|<Ax,y> - <x,A*y>| / (||A|| ||x|| ||y||)`` in float64."""
    x = torch.randn(op.domain_shape, generator=generator, dtype=torch.float64)
    y = torch.randn(op.range_shape, generator=generator, dtype=torch.float64)
    lhs = torch.sum(op.forward(x) * y)
    rhs = torch.sum(x * op.adjoint(y))
    norm = op.norm(dtype=torch.float64, generator=generator)
    return float(
        abs(lhs - rhs) / (norm * torch.linalg.vector_norm(x) * torch.linalg.vector_norm(y))
    )


def _cuda_timings(report: BenchReport, *, n, angles, n_det, m, tilts) -> None:
    """Time the same projectors on the GPU (torch path, synchronised) into extra keys."""

    def timed(fn):
        def synced():
            fn()
            torch.cuda.synchronize()

        return best_time(synced, repeat=5)

    dev = "cuda"
    v = report.values
    image = torch.rand(n, n, device=dev)
    op = Radon2D(image_shape=(n, n), angles=angles.to(dev), n_detector=n_det)
    sino = op.forward(image)
    v["radon_forward_cuda_s"] = timed(lambda: op.forward(image))
    v["radon_adjoint_cuda_s"] = timed(lambda: op.adjoint(sino))
    volume = torch.rand(m, m, m, device=dev)
    proj3 = TiltSeriesProjector(volume_shape=(m, m, m), geometry=TiltGeometry(angles=tilts.to(dev)))
    stack = proj3.forward(volume)
    torch.cuda.reset_peak_memory_stats()
    v["tilt_forward_cuda_s"] = timed(lambda: proj3.forward(volume))
    v["tilt_adjoint_cuda_s"] = timed(lambda: proj3.adjoint(stack))
    v["tilt_cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    v["cuda_device"] = torch.cuda.get_device_name()
    report.compare(
        "Radon forward on CUDA vs on CPU", v["radon_forward_cuda_s"], v["radon_forward_s"]
    )
    report.compare(
        "tilt series forward on CUDA vs on CPU", v["tilt_forward_cuda_s"], v["tilt_forward_s"]
    )


def run(*, quick: bool = False) -> BenchReport:
    """Run the tomography benchmark and return its report.

    Parameters
    ----------
    quick
        Laptop sizes (under a minute on 2 cores).
    """
    report = BenchReport(name="tomography", quick=quick)
    g = torch.Generator().manual_seed(0)
    v = report.values
    astra_ok = has_astra()

    # Exactness first: adjoint errors in float64 on small geometries.
    radon_small = Radon2D(
        image_shape=(33, 32),
        angles=torch.linspace(0, 179, 37, dtype=torch.float64),
        detector_offset=0.3,
    )
    xf = torch.tensor([[[0.99, -0.05, 1.3], [0.05, 0.99, -0.7]]], dtype=torch.float64)
    tilt_small = TiltSeriesProjector(
        volume_shape=(12, 10, 14),
        geometry=TiltGeometry(
            angles=torch.tensor([-50.0, -10.0, 35.0], dtype=torch.float64),
            xf=xf.expand(3, 2, 3).clone(),
        ),
    )
    v["radon_adjoint_rel_error"] = adjoint_error(radon_small, generator=g)
    v["tilt_adjoint_rel_error"] = adjoint_error(tilt_small, generator=g)

    # 2-D projector speed.
    n, n_angles = (256, 180) if quick else (512, 360)
    angles = torch.arange(n_angles, dtype=torch.float32) * (180.0 / n_angles)
    n_det = int(np.ceil(n * np.sqrt(2)))
    image = phantoms.shepp_logan_2d(n)
    op = Radon2D(image_shape=(n, n), angles=angles, n_detector=n_det)
    sino = op.forward(image)
    repeat = 3 if quick else 5
    v.update(radon_size=n, radon_angles=n_angles, radon_detectors=n_det)
    v["radon_forward_s"] = best_time(lambda: op.forward(image), repeat=repeat)
    v["radon_adjoint_s"] = best_time(lambda: op.adjoint(sino), repeat=repeat)
    if astra_ok:
        astra2d = Astra2D(n, angles.numpy(), n_det)
        img_np = image.numpy()
        sino_np = astra2d.forward(img_np)
        v["astra_forward_s"] = best_time(lambda: astra2d.forward(img_np), repeat=repeat)
        v["astra_backproject_s"] = best_time(lambda: astra2d.backproject(sino_np), repeat=repeat)
        astra2d.close()
    else:
        v["astra_forward_s"] = v["astra_backproject_s"] = None
    from skimage.transform import radon as sk_radon

    sk_img = image.double().numpy()
    v["skimage_radon_s"] = best_time(
        lambda: sk_radon(sk_img, theta=angles.double().numpy(), circle=False), repeat=1
    )
    report.compare(f"Radon forward {n}^2 x {n_angles}", v["radon_forward_s"], v["astra_forward_s"])
    report.compare(
        f"Radon adjoint {n}^2 x {n_angles}", v["radon_adjoint_s"], v["astra_backproject_s"]
    )
    report.compare("Radon forward vs scikit-image", v["radon_forward_s"], v["skimage_radon_s"])

    # 3-D tilt series speed and memory.
    m = 128 if quick else 256
    tilts = torch.arange(-60.0, 61.0, 2.0)
    volume = torch.rand(m, m, m, generator=g)
    proj3 = TiltSeriesProjector(volume_shape=(m, m, m), geometry=TiltGeometry(angles=tilts))
    stack = proj3.forward(volume)
    with PeakMemory() as mem_fwd:
        v["tilt_forward_s"] = best_time(lambda: proj3.forward(volume), repeat=3, warmup=0)
    with PeakMemory() as mem_adj:
        v["tilt_adjoint_s"] = best_time(lambda: proj3.adjoint(stack), repeat=3, warmup=0)
    v.update(
        tilt_size=m,
        tilt_count=len(tilts),
        tilt_forward_peak_mib=round(mem_fwd.peak_mib, 1),
        tilt_adjoint_peak_mib=round(mem_adj.peak_mib, 1),
    )
    report.compare(f"tilt series forward {m}^3 x {len(tilts)}", v["tilt_forward_s"], None)
    report.compare(f"tilt series adjoint {m}^3 x {len(tilts)}", v["tilt_adjoint_s"], None)

    if torch.cuda.is_available():
        _cuda_timings(report, n=n, angles=angles, n_det=n_det, m=m, tilts=tilts)

    # FBP quality, noise-free Shepp-Logan 256x256, 180 angles: each tool from its own data.
    nf, af = 256, 180
    phantom = phantoms.shepp_logan_2d(nf, dtype=torch.float64)
    fangles = torch.arange(af, dtype=torch.float64) * (180.0 / af)
    fdet = int(np.ceil(nf * np.sqrt(2)))
    fop = Radon2D(image_shape=(nf, nf), angles=fangles, n_detector=fdet)
    ours = fbp(fop.forward(phantom), fop)
    v["fbp_psnr_db"] = float(metrics.psnr(ours, phantom, data_range=1.0))
    if astra_ok:
        astra_f = Astra2D(nf, fangles.numpy(), fdet)
        ph = phantom.float().numpy()
        rec = astra_f.fbp(astra_f.forward(ph))
        astra_f.close()
        v["astra_fbp_psnr_db"] = float(
            metrics.psnr(torch.from_numpy(rec).double(), phantom, data_range=1.0)
        )
    else:
        v["astra_fbp_psnr_db"] = None
    v.update(fbp_size=nf, fbp_angles=af)
    report.compare(
        "FBP PSNR Shepp-Logan 256^2 x 180",
        v["fbp_psnr_db"],
        v["astra_fbp_psnr_db"],
        unit="dB",
        higher_is_better=True,
    )
    return report
