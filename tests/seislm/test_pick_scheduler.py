"""``seislm pick`` maps its files with `map_items`: input order kept, ``--scheduler`` passed."""

from __future__ import annotations

import obspy
import pytest

import inversa.cli._seislm  # noqa: F401  (registers the commands)
from inversa.cli import main
from inversa.seislm import load_picker, pick_files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("waves")
    first, second = root / "rjob.mseed", root / "other.mseed"
    obspy.read().write(str(first), format="MSEED")
    st = obspy.read()
    for tr in st:
        tr.stats.station = "OTHR"
        tr.data = tr.data[::-1].copy()  # other picks than the first file's
    st.write(str(second), format="MSEED")
    bad = root / "bad.mseed"
    bad.write_bytes(b"not a seismogram")
    return first, bad, second


def _key(pick):
    return (pick.waveform_id.get_seed_string(), pick.phase_hint, str(pick.time))


def test_many_files_keep_their_order_and_their_failures(files):
    first, bad, second = files
    model = load_picker()
    missing = first.with_name("gone.mseed")
    run = pick_files([first, bad, second, missing], model=model)
    alone = [pick_files([f], model=model) for f in (first, second)]
    assert [_key(p) for p in run.picks] == [_key(p) for r in alone for p in r.picks]
    assert {p.waveform_id.station_code for p in run.picks} == {"RJOB", "OTHR"}
    assert [path.name for path, _ in run.failures] == ["bad.mseed", missing.name]
    assert "file not found" in run.failures[1][1]
    assert run.stations == alone[0].stations + alone[1].stations == 2


def test_scheduler_option(files, monkeypatch, capsys):
    import inversa.seislm

    first, _, second = files
    assert main(["seislm", "pick", str(first), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "127.0.0.1:1" in err[0]
    seen = []

    def fake(paths, **kwargs):
        seen.append(kwargs["scheduler"])
        return pick_files(paths, **{**kwargs, "scheduler": None})  # no worker start-up here

    monkeypatch.setattr(inversa.seislm, "pick_files", fake)
    assert main(["seislm", "pick", str(first), str(second), "--scheduler", "processes"]) == 0
    assert seen == ["processes"]
    assert main(["seislm", "pick", str(first)]) == 0
    assert seen == ["processes", None]
