"""The demo job and its report: files, metrics, a self-contained page whose text is true."""

import base64
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

from inversa.core import phantoms
from inversa.core.errors import OutputExistsError
from inversa.workflows import SimulationConfig, _demo, run_demo
from inversa.workflows._report import write_html_report

TINY = SimulationConfig(
    shape=(24, 64, 64),
    voxel_size=5.0,
    structure=str(phantoms.builtin_structure_path("1ake")),
    reference_box=24,
    n_particles=4,
    n_membranes=1,
    tilt_step=5.0,
    dose=500.0,
    seed=1,
)
_PNG = b"\x89PNG\r\n\x1a\n"


class _Links(HTMLParser):
    """Every attribute that can load something, and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "background"):
                self.refs.append((tag, name, value or ""))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo without averaging; the full run is its own test below."""
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, simulation=TINY, sirt_iterations=5, averaging=False, progress=False)


def _text(report) -> str:
    return " ".join(" ".join(_parse(report.read_text(encoding="utf-8")).text).split())


def _check_self_contained(report, *, n_images: int) -> None:
    page = _parse(report.read_text(encoding="utf-8"))
    images = [value for tag, name, value in page.refs if tag == "img" and name == "src"]
    assert len(images) == n_images
    others = [ref for ref in page.refs if not (ref[0] == "img" and ref[1] == "src")]
    assert others == []
    for src in images:
        assert src.startswith("data:image/png;base64,"), src[:40]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == _PNG


def _check_data_and_quality(result) -> None:
    text = _text(result.report)
    config = result.simulation
    model = phantoms.read_atomic_model(config.structure)
    assert result.structure.startswith(model.name)
    d, h, w = config.shape
    assert f"{w}x{h}x{d} voxels at {config.voxel_size:g} Å" in text
    assert f"{config.n_particles} copies of {result.structure}" in text
    n_tilts = math.floor((config.tilt_max - config.tilt_min) / config.tilt_step) + 1
    assert f"{n_tilts} tilts" in text
    assert f"{config.dose:g} e/Å² per tilt" in text
    assert f"seed {config.seed}" in text
    # The other shipped structure is not what this run simulated.
    assert "6ZU5" not in text and "ribosome" not in text.lower()
    for method, m in result.metrics.items():
        label = _demo._label(method)
        row = f"{label} {m['psnr_db']:.2f} {m['ssim']:.3f} {m['correlation']:.3f}"
        assert row in text
        q = f"{m['fsc_0.5_A']:.1f} {m['fsc_0.143_A']:.1f} {m['seconds']:.1f}"
        assert f"{row} {q}" in text


def test_demo_writes_report_figures_and_metrics(demo):
    out, result = demo
    assert result.report == out / "report.html" and result.report.exists()
    for png in ("slices.png", "tilts.png", "fsc.png"):
        assert (out / png).read_bytes()[:8] == _PNG
    saved = json.loads((out / "metrics.json").read_text())
    assert list(saved["methods"]) == ["wbp", "sirt", "cryolithe"]
    for method in ("wbp", "sirt", "cryolithe"):
        m = saved["methods"][method]
        assert all(math.isfinite(m[k]) for k in ("psnr_db", "ssim", "correlation"))
        assert m["correlation"] > 0.5
        assert 2 * TINY.voxel_size <= m["fsc_0.143_A"] < 10 * TINY.voxel_size
        assert m["seconds"] == result.timings[method] > 0
    assert (out / "tomogram_cryolithe.mrc").exists()
    assert saved["subtomogram_averaging"] is None and result.initial_resolution is None
    assert set(result.timings) == {"simulate", "wbp", "sirt", "cryolithe", "report"}
    with pytest.raises(OutputExistsError):
        run_demo(out, simulation=TINY, sirt_iterations=5, averaging=False, progress=False)


def test_report_is_self_contained(demo):
    _check_self_contained(demo[1].report, n_images=3)  # tilts, slices, FSC


def test_report_text_comes_from_the_values_used(demo):
    _check_data_and_quality(demo[1])


def test_report_shows_cryolithe_beside_wbp_and_sirt(demo):
    from inversa.cryolithe import default_model_path, load_model

    _, result = demo
    text = _text(result.report)
    model, info = load_model(default_model_path())
    n_params = sum(p.numel() for p in model.parameters())
    assert f"CryoLithe, the shipped {model.config.head}-head model ({n_params:,} parameters" in text
    assert f"trained for {info['training_seconds_total']:.0f} s" in text
    # TINY simulates 1AKE at 5 Å: not what the shipped model was trained on
    assert "outside its training data" in text and "inside its training" not in text
    flipped = " on phase-flipped tilts" if TINY.ctf else ""
    assert f"WBP with a Hann-windowed ramp filter{flipped}; SIRT, 5 iterations{flipped};" in text


def _png_width(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # IHDR width


def test_demo_without_cryolithe(demo, tmp_path):
    result = run_demo(
        tmp_path,
        simulation=TINY,
        sirt_iterations=5,
        averaging=False,
        cryolithe=False,
        progress=False,
    )
    assert list(result.metrics) == ["wbp", "sirt"]
    assert "CryoLithe" not in _text(result.report)
    # the slices figure has one column per volume: truth, WBP, SIRT (+ CryoLithe)
    three, four = _png_width(tmp_path / "slices.png"), _png_width(demo[0] / "slices.png")
    assert four == pytest.approx(three * 4 / 3, rel=0.08)


def test_averaging_text_comes_from_the_values_used(tmp_path):
    png = tmp_path / "figure.png"
    png.write_bytes(_PNG)
    summary = {
        "n_particles": 7.0,
        "halfmap_fsc_0.143_A": 31.25,
        "fsc_truth_0.5_A": 41.5,
        "fsc_truth_0.143_A": 33.5,
        "true_pose_fsc_truth_0.5_A": 29.5,
        "true_pose_fsc_truth_0.143_A": 25.5,
        "median_angular_error_deg": 4.25,
        "p90_angular_error_deg": 9.75,
        "seconds": 12.5,
    }
    empty = torch.zeros(4, 4, 4)
    avg = _demo._Averaging(
        summary=summary,
        errors=torch.zeros(7),
        average=empty,
        oracle=empty,
        start=empty,
        fsc_halves=torch.ones(3),
        fsc_truth=torch.ones(3),
        fsc_oracle=torch.ones(3),
        refine_dir=tmp_path,
        method="newton",
        max_angle_deg=7.5,
        iterations=3,
        initial_resolution=47.0,
        chance={"median": 131.0, "p90": 170.0},
    )
    figures = {"average": png, "average_fsc": png, "angular_error": png}
    sections = _demo._averaging_sections(avg, TINY, figures, empty)
    report = write_html_report(tmp_path / "r.html", title="t", sections=sections)
    text = _text(report)
    assert f"({TINY.reference_box}^3 boxes" in text
    assert "7 particles" in text and "low-passed to 47 Å" in text and "within 7.5°" in text
    assert "3 iterations" in text and "12.5 s" in text
    assert "median of 131° (90th percentile 170°)" in text
    assert "start (47 Å)" in text and "60 Å" not in text and "30 Å" not in text
    for value in ("31.2", "41.5 / 33.5", "29.5 / 25.5", "4.2", "9.8"):
        assert value in text
    _check_self_contained(report, n_images=3)


def test_chance_errors_are_those_of_random_rotations():
    chance = _demo._chance_errors()
    # Haar measure: the rotation angle t has CDF (t - sin t) / pi, so the median solves
    # t - sin t = pi / 2 (132.3°) and the 90th percentile t - sin t = 0.9 pi (171.0°).
    assert abs(chance["median"] - 132.3) < 0.5 and abs(chance["p90"] - 171.0) < 0.5


@pytest.mark.slow
def test_full_demo_with_averaging(tmp_path):
    # The demo's own path through extraction and refinement: ~25 s of CPU, mostly Newton.
    result = run_demo(tmp_path, simulation=TINY, sirt_iterations=5, progress=False)
    for png in ("average.png", "average_fsc.png", "angular_error.png"):
        assert (tmp_path / png).read_bytes()[:8] == _PNG
    assert result.averaging["n_particles"] == TINY.n_particles
    assert set(result.timings) == {
        "simulate",
        "wbp",
        "sirt",
        "cryolithe",
        "extract",
        "refine",
        "report",
    }
    _check_self_contained(result.report, n_images=6)
    _check_data_and_quality(result)
    text = _text(result.report)
    # The report says how the particles were weighted: the scene's CTF or the wedge alone.
    weighting = "3-D CTF weight" if TINY.ctf else "wedge-weighted gold-standard averaging"
    assert weighting in text
    start = result.initial_resolution
    assert f"low-passed to {start:.0f} Å" in text and f"start ({start:.0f} Å)" in text
    assert re.findall(r"start \((\d+) Å\)", text) == [f"{start:.0f}"]
    assert f"{result.averaging['median_angular_error_deg']:.1f}" in text


def test_html_report_embeds_images_and_escapes_text(tmp_path):
    png = tmp_path / "figure.png"
    png.write_bytes(_PNG + b"rest")
    path = write_html_report(
        tmp_path / "page.html",
        title="a <b> title",
        sections=[
            ("text", "x < y & z"),
            ("table", [["h1", "h2"], ["1", "<2>"]]),
            ("image", png),
            ("captioned", (png, "panels: a, b")),
        ],
    )
    html = path.read_text(encoding="utf-8")
    assert "a &lt;b&gt; title" in html and "x &lt; y &amp; z" in html and "&lt;2&gt;" in html
    page = _parse(html)
    assert [v[:22] for _, _, v in page.refs] == ["data:image/png;base64,"] * 2
    assert "figure.png" not in html
    assert "img{max-width:100%" in html
    with pytest.raises(OutputExistsError):
        write_html_report(path, title="again", sections=[])


def test_html_report_reads_relative_figures_from_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "f.png").write_bytes(_PNG)
    # What the demo passes for `--out out`: the page and its figure, both relative.
    path = write_html_report(
        Path("out") / "page.html", title="t", sections=[("image", Path("out") / "f.png")]
    )
    _check_self_contained(path, n_images=1)


def test_stages_show_on_stderr_only_when_asked(capsys):
    for enabled in (True, None):  # None: only on a terminal, which pytest's stderr is not
        with _demo._Stages(["one", "two"], enabled=enabled) as stages:
            with stages.stage("one", "first stage"):
                pass
            with stages.stage("two", "second stage"):
                pass
        captured = capsys.readouterr()
        assert captured.out == ""
        assert ("second stage" in captured.err and "2/2" in captured.err) == bool(enabled)
        assert set(stages.seconds) == {"one", "two"}
