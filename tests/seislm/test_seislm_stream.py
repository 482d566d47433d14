import numpy as np
import obspy
import pytest

from inversa.core.errors import InputError
from inversa.seislm import read_waveforms, stream_to_waveforms


def test_example_stream_in_zne_order():
    st = obspy.read()
    shuffled = obspy.Stream([st[2], st[0], st[1]])
    (w,) = stream_to_waveforms(shuffled)
    assert w.data.shape == (3, 3000) and w.sampling_rate == 100.0
    assert w.seed_id == "BW.RJOB..EH?" and w.starttime == st[0].stats.starttime
    for i, c in enumerate("ZNE"):
        assert np.allclose(w.data[i].numpy(), st.select(component=c)[0].data)


def test_missing_component_names_the_file():
    st = obspy.read()
    with pytest.raises(InputError, match=r"x\.mseed.*lacks component\(s\) E"):
        stream_to_waveforms(st.select(component="[ZN]"), path="x.mseed")
    with pytest.raises(InputError, match="holds no traces"):
        stream_to_waveforms(obspy.Stream(), path="x.mseed")


def test_gaps_refused_or_filled():
    st = obspy.read()
    gappy = obspy.Stream([tr.slice(None, tr.stats.starttime + 10) for tr in st]) + obspy.Stream(
        [tr.slice(tr.stats.starttime + 20, None) for tr in st]
    )
    with pytest.raises(InputError, match=r"gap.*--fill-gaps"):
        stream_to_waveforms(gappy, path="g.mseed")
    (w,) = stream_to_waveforms(gappy, fill_gaps=True)
    assert w.data.shape == (3, 3000) and any("filled 1 gap" in n for n in w.notes)


def test_resampled_with_a_note_and_low_rate_refused():
    st = obspy.read()
    for tr in st:
        tr.resample(200.0)
    (w,) = stream_to_waveforms(st)
    assert w.sampling_rate == 100.0 and abs(w.data.shape[1] - 3000) <= 1
    assert any("resampled from 200 Hz to 100 Hz" in n for n in w.notes)
    low = obspy.read()
    for tr in low:
        tr.decimate(10)
    with pytest.raises(InputError, match="too low"):
        stream_to_waveforms(low)


def test_batch_reports_and_skips_bad_files(tmp_path):
    good = tmp_path / "good.mseed"
    obspy.read().write(str(good), format="MSEED")
    corrupt = tmp_path / "corrupt.mseed"
    corrupt.write_bytes(b"\x00garbage" * 100)
    empty = tmp_path / "empty.mseed"
    empty.write_bytes(b"")
    two = tmp_path / "two.mseed"
    obspy.read().select(component="[ZN]").write(str(two), format="MSEED")
    ok, bad = read_waveforms([corrupt, good, empty, two, tmp_path / "missing.mseed"])
    assert [p.name for p, _ in ok] == ["good.mseed"]
    problems = dict((p.name, why) for p, why in bad)
    assert set(problems) == {"corrupt.mseed", "empty.mseed", "two.mseed", "missing.mseed"}
    assert "empty" in problems["empty.mseed"] and "lacks component" in problems["two.mseed"]
