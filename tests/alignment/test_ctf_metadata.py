"""Per-tilt defocus and dose metadata: ctffind, IMOD .defocus, RELION 5 tilt-series STAR."""

import pytest
import torch

from inversa.core.errors import InputError, OutputExistsError
from inversa.core.io import read_ctffind, read_imod_defocus, read_star
from inversa.tomography import (
    TiltSeriesCTF,
    dose_symmetric_exposure,
    read_relion5_tilt_series,
    tilt_series_from_table,
    write_relion5_tilt_series,
)

CTFFIND = """# Output from CTFFind version 4.1.14
# Columns: #1 - micrograph number; #2 - defocus 1 [Angstroms]; #3 - defocus 2;
# #4 - azimuth of astigmatism; #5 - additional phase shift [radians]; #6 - cc; #7 - fit
1.000000 30500.5 29800.0 35.2 0.000000 0.123 8.5
2.000000 31000.0 30100.0 36.0 0.100000 0.110 9.0
3.000000 29500.0 28900.0 34.1 0.000000 0.105 9.5
"""

IMOD_V3 = """1 0 0. 0. 0 3
1 1 -60.00 -60.00 3050.0 2980.0 35.2
2 2 0.00 0.00 3100.0 3010.0 36.0
3 3 60.00 60.00 2950.0 2890.0 34.1
"""

IMOD_V2 = """1 1 -60.00 -60.00 3050 2
2 3 0.00 3.00 3100
"""


def test_ctffind_table(tmp_path):
    path = tmp_path / "ts_ctffind.txt"
    path.write_text(CTFFIND)
    table = read_ctffind(path)
    torch.testing.assert_close(
        table["defocus_u_um"], torch.tensor([3.05005, 3.1, 2.95], dtype=torch.float64)
    )
    torch.testing.assert_close(
        table["defocus_v_um"], torch.tensor([2.98, 3.01, 2.89], dtype=torch.float64)
    )
    assert table["phase_shift_deg"][1] == pytest.approx(5.7295779, rel=1e-6)
    ts = tilt_series_from_table(table, angles=torch.tensor([-60.0, 0.0, 60.0]))
    assert ts.n_tilts == 3
    with pytest.raises(InputError):
        tilt_series_from_table(table)  # ctffind has no angles


def test_imod_defocus_versions(tmp_path):
    v3 = tmp_path / "v3.defocus"
    v3.write_text(IMOD_V3)
    table = read_imod_defocus(v3)
    torch.testing.assert_close(
        table["tilt_deg"], torch.tensor([-60.0, 0.0, 60.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        table["defocus_u_um"], torch.tensor([3.05, 3.1, 2.95], dtype=torch.float64)
    )
    assert table["astigmatism_deg"][2] == pytest.approx(34.1)
    v2 = tmp_path / "v2.defocus"
    v2.write_text(IMOD_V2)
    table = read_imod_defocus(v2)
    assert table["view"].tolist() == [1.0, 2.0, 3.0]
    assert table["defocus_v_um"].tolist() == pytest.approx([3.05, 3.1, 3.1])
    ts = tilt_series_from_table(table, pre_exposure=dose_symmetric_exposure(table["tilt_deg"], 3.0))
    assert ts.defocus_u_um.tolist() == pytest.approx([3.05, 3.1, 3.1])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1 1 -60 -60 abc\n",
        "1 0 0. 0. 0 3\n1 1 -60 -60 3000 2900\n",
        "1 1 0 0 3000\n3 3 3 3 3000\n",
    ],
)
def test_bad_imod_files_raise(tmp_path, text):
    path = tmp_path / "bad.defocus"
    path.write_text(text)
    with pytest.raises(InputError):
        read_imod_defocus(path)


def test_relion5_tilt_series_round_trip(tmp_path):
    angles = torch.arange(-9.0, 10.0, 3.0, dtype=torch.float64)
    ts = TiltSeriesCTF(
        angles=angles,
        defocus_u_um=3.0 + 0.01 * angles,
        defocus_v_um=2.9 + 0.01 * angles,
        astigmatism_deg=12.5,
        pre_exposure=dose_symmetric_exposure(angles, 3.0),
        voltage_kv=200.0,
        handedness=-1.0,
    )
    star = tmp_path / "tomograms.star"
    written = write_relion5_tilt_series(
        star, {"TS_01": ts}, pixel_size_A=1.35, tomograms={"TS_01": "tomo/TS_01.mrc"}
    )
    assert written[-1] == star and (tmp_path / "tilt_series" / "TS_01.star").exists()
    table = read_star(star)["global"]
    assert table["rlnTomoTiltSeriesStarFile"][0] == "tilt_series/TS_01.star"
    assert table["rlnTomoReconstructedTomogram"][0] == "tomo/TS_01.mrc"
    back = read_relion5_tilt_series(star)["TS_01"]
    for name in ("angles", "defocus_u_um", "defocus_v_um", "astigmatism_deg", "pre_exposure"):
        torch.testing.assert_close(getattr(back, name), getattr(ts, name), atol=1e-5, rtol=0)
    assert back.voltage_kv == 200.0 and back.handedness == -1.0
    with pytest.raises(OutputExistsError):
        write_relion5_tilt_series(star, {"TS_01": ts}, pixel_size_A=1.35)


def test_relion5_reader_refuses_a_table_without_tilt_series(tmp_path):
    path = tmp_path / "tomograms.star"
    path.write_text("data_global\n\nloop_\n_rlnTomoName #1\nTS_01\n")
    with pytest.raises(InputError):
        read_relion5_tilt_series(path)
