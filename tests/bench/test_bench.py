import json

from inversa.cli import main

KEYS = (
    "radon_adjoint_rel_error",
    "tilt_adjoint_rel_error",
    "radon_forward_s",
    "radon_adjoint_s",
    "astra_forward_s",
    "astra_backproject_s",
    "skimage_radon_s",
    "tilt_forward_s",
    "tilt_adjoint_s",
    "fbp_psnr_db",
    "astra_fbp_psnr_db",
    "radon_size",
    "tilt_size",
    "fbp_size",
)


def test_quick_tomography_bench_writes_the_issue_keys(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "tomography", "--quick", "--json", str(out)]) == 0
    values = json.loads(out.read_text())
    for key in KEYS:
        assert key in values, key
    assert values["quick"] is True
    assert values["radon_adjoint_rel_error"] < 1e-5
    assert values["tilt_adjoint_rel_error"] < 1e-5
    # the same noise-free experiment as ASTRA: within 0.5 dB of it or better
    assert values["fbp_psnr_db"] > values["astra_fbp_psnr_db"] - 0.5
    assert values["radon_forward_s"] > 0 and values["tilt_adjoint_s"] > 0
