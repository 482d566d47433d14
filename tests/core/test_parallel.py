import math
import time
from pathlib import Path

import pytest

from inversa.core.errors import InputError
from inversa.core.parallel import ItemResult, map_items, raise_failures


def _slow_square(x):
    # Later items finish first, so order can only come out right by design.
    time.sleep(0.02 * (5 - x) if 0 <= x < 5 else 0)
    return x * x


def _fails_on_three(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    if x == 4:
        raise InputError("file4.mrc", "not an MRC file")
    return x + 1


def test_order_preserved_threads():
    results = map_items(_slow_square, range(5), progress=False)
    assert [r.value for r in results] == [0, 1, 4, 9, 16]
    assert [r.index for r in results] == list(range(5))
    assert all(r.ok and r.error is None for r in results)
    raise_failures(results)  # nothing to raise


def test_empty_items():
    assert map_items(_slow_square, [], progress=True) == []


def test_errors_captured_with_index_and_label():
    results = map_items(_fails_on_three, [1, 2, 3, 4, 5], progress=False, description="t")
    assert [r.value for r in results] == [2, 3, None, None, 6]
    failed = [r for r in results if not r.ok]
    assert [(r.index, r.label) for r in failed] == [(2, "3"), (3, "4")]
    assert failed[0].error.startswith("ValueError: bad item 3 (at ")
    assert "_fails_on_three" in failed[0].error
    assert not failed[0].input_error
    assert failed[1].input_error
    with pytest.raises(RuntimeError, match=r"2 of 5 items failed") as info:
        raise_failures(results)
    assert "[2] 3: ValueError: bad item 3" in str(info.value)
    assert "[3] 4: InputError: file4.mrc: not an MRC file" in str(info.value)


def test_raise_failures_input_error_only():
    results = map_items(_fails_on_three, [4, 1], progress=False)
    with pytest.raises(InputError, match=r"1 of 2 items failed"):
        raise_failures(results)


def test_labels_of_paths_and_long_items():
    results = map_items(str, [Path("/data/ts_01.mrc"), "x" * 200], progress=False)
    assert results[0].label == "/data/ts_01.mrc"
    assert len(results[1].label) == 80
    assert results[1].label.endswith("...")


def test_fail_fast_reraises_original_exception():
    with pytest.raises(ValueError, match="bad item 3"):
        map_items(_fails_on_three, [1, 2, 3], progress=False, fail_fast=True)


def test_item_result_is_frozen():
    result = ItemResult(0, "a", 1, None)
    with pytest.raises(AttributeError):
        result.value = 2  # type: ignore[misc]
    assert result.ok


def test_processes_scheduler():
    results = map_items(math.sqrt, [4.0, 9.0, -1.0], scheduler="processes", progress=False)
    assert [r.value for r in results[:2]] == [2.0, 3.0]
    assert results[2].error.startswith("ValueError: math domain error")


def test_distributed_scheduler_address():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        results = map_items(_fails_on_three, [3, 1, 2], scheduler=cluster.scheduler_address)
        assert [r.value for r in results] == [None, 2, 3]
        assert results[0].error.startswith("ValueError: bad item 3")
        with pytest.raises(ValueError, match="bad item 3"):
            map_items(
                _fails_on_three,
                [1, 2, 3],
                scheduler=cluster.scheduler_address,
                progress=False,
                fail_fast=True,
            )
