"""The one output check (shared by the CLI and the file-level jobs) and output folders."""

from __future__ import annotations

import errno
import os
import tempfile

import pytest

from inversa.core.errors import InputError, OutputExistsError
from inversa.core.io import check_outputs, output_folder


def test_check_outputs(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    check_outputs([tmp_path / "new.json"], folders=[tmp_path / "new" / "deep"])
    check_outputs([tmp_path / "new" / "o.json"], folders=[tmp_path / "new"])  # planned folder
    with pytest.raises(OutputExistsError):
        check_outputs([a_file])
    check_outputs([a_file], force=True)
    with pytest.raises(InputError, match="is a folder"):
        check_outputs([tmp_path])
    with pytest.raises(InputError, match="not a folder"):
        check_outputs(folders=[a_file])
    with pytest.raises(InputError, match="is a file"):
        check_outputs(folders=[a_file / "sub"])
    with pytest.raises(InputError, match="does not exist"):
        check_outputs([tmp_path / "missing" / "o.json"])
    with pytest.raises(InputError, match="not a folder"):
        check_outputs([a_file / "o.json"])
    with pytest.raises(InputError, match="is an input"):  # even with force
        check_outputs([tmp_path / "." / "f"], force=True, inputs=[a_file])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # the checks write nothing


def test_an_input_reached_through_a_link_is_refused(tmp_path):
    source = tmp_path / "in.mrc"
    source.write_text("x")
    (tmp_path / "link.mrc").symlink_to(source)
    with pytest.raises(InputError, match="is an input"):
        check_outputs([tmp_path / "link.mrc"], force=True, inputs=[source])


def test_existing_output_is_named(tmp_path):
    (tmp_path / "b.mrc").write_text("x")
    with pytest.raises(OutputExistsError) as info:
        check_outputs([tmp_path / "a.mrc", tmp_path / "b.mrc"])
    assert info.value.path == os.fspath(tmp_path / "b.mrc") and "--force" in str(info.value)


def test_each_folder_is_probed_once(tmp_path, monkeypatch):
    calls = []
    real = tempfile.mkstemp

    def counting(*args, **kwargs):
        calls.append(kwargs["dir"])
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", counting)
    (tmp_path / "b").mkdir()
    many = [tmp_path / f"{i}.mrc" for i in range(5)] + [tmp_path / "b" / "x.mrc"]
    check_outputs(many, folders=[tmp_path / "new"])
    assert sorted(map(str, calls)) == sorted(map(str, [tmp_path, tmp_path, tmp_path / "b"]))


def test_unwritable_file_folder_names_the_output(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    # Root ignores permission bits, so the read-only mount is simulated at the probe.
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(InputError, match="Read-only") as info:
        check_outputs([tmp_path / "o.json"])
    assert info.value.path == os.fspath(tmp_path / "o.json")
    with pytest.raises(InputError, match="Read-only"):
        check_outputs(folders=[tmp_path / "new" / "deep"])
    with pytest.raises(InputError, match="Read-only"), output_folder(tmp_path / "new"):
        pass
    assert not (tmp_path / "new").exists()


def test_output_folder_removes_only_what_the_run_created(tmp_path):
    target = tmp_path / "a" / "b"
    with output_folder(target) as folder:
        (folder / "x").write_text("x")
    assert (target / "x").exists()  # success keeps everything

    with pytest.raises(RuntimeError), output_folder(tmp_path / "new" / "deep") as folder:
        (folder / "half").write_text("half-written")
        raise RuntimeError
    assert not (tmp_path / "new").exists()  # created by the failed run: gone

    with pytest.raises(RuntimeError), output_folder(target) as folder:
        (folder / "sub").mkdir()
        (folder / "sub" / "y").write_text("y")
        (folder / "z").write_text("z")
        raise RuntimeError
    assert sorted(p.name for p in target.iterdir()) == ["x"]  # the earlier file stays


def test_cli_and_jobs_share_the_one_check():
    from inversa.cli import _options
    from inversa.workflows import _outputs

    assert _options.check_outputs is check_outputs and _options.output_folder is output_folder
    assert not hasattr(_outputs, "check_outputs") and not hasattr(_outputs, "_writable")
