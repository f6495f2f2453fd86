"""The scheduled evaluations' history: appended atomically, never shortened, safe under concurrency."""

import threading
from datetime import UTC, datetime

import pandas as pd
import pytest

from tasks.evaluate.history import append_history, inputs_key, read_history, table_rows


def row(n: int) -> dict:
    return {
        "time": datetime(2026, 11, n % 28 + 1, 3, tzinfo=UTC),
        "run": f"run-{n}",
        "checkpoint": "ckpt-000300",
        "key": f"k{n}",
        "iou": 0.5 + n / 100,
        "centroid_error_px": None,
    }


def test_append_and_read(tmp_path):
    path = tmp_path / "scheduled" / "history.parquet"
    assert read_history(path).empty
    append_history(path, row(1))
    table = append_history(path, row(2))
    again = read_history(path)
    pd.testing.assert_frame_equal(table, again)
    assert again["run"].tolist() == ["run-1", "run-2"]
    assert str(again["time"].dtype) == "datetime64[us, UTC]"
    assert sorted(p.name for p in path.parent.iterdir()) == [".history.parquet.lock", "history.parquet"]


def test_a_failed_write_leaves_the_old_table(tmp_path, monkeypatch):
    path = tmp_path / "history.parquet"
    append_history(path, row(1))
    before = path.read_bytes()

    def half_write(self, target, **kwargs):
        with open(target, "wb") as f:
            f.write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_write)
    with pytest.raises(OSError, match="disk full"):
        append_history(path, row(2))
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_concurrent_appends_lose_no_row(tmp_path):
    path = tmp_path / "history.parquet"
    threads = [
        threading.Thread(target=lambda n=n: [append_history(path, row(10 * n + i)) for i in range(4)])
        for n in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(read_history(path)["run"]) == sorted(f"run-{10 * n + i}" for n in range(5) for i in range(4))


def test_table_rows_are_json_safe_newest_first(tmp_path):
    path = tmp_path / "history.parquet"
    for n in range(3):
        table = append_history(path, row(n))
    rows = table_rows(table, last=2)
    assert [r["run"] for r in rows] == ["run-2", "run-1"]
    assert rows[0]["time"].startswith("2026-11-03T03:00:00") and rows[0]["centroid_error_px"] is None


def test_inputs_key_follows_file_contents_and_settings(tmp_path):
    a = tmp_path / "trainable.safetensors"
    a.write_bytes(b"weights v1")
    key = inputs_key([a], {"seeds": [0]})
    assert inputs_key([a], {"seeds": [0]}) == key
    assert inputs_key([a], {"seeds": [1]}) != key
    a.write_bytes(b"weights v2")
    assert inputs_key([a], {"seeds": [0]}) != key
