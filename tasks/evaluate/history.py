"""The metrics history of scheduled evaluations: one parquet file, one row per evaluated run.

Each row: when (UTC), the run's folder, the checkpoint evaluated (name and a hash of its weights),
the inputs key (checkpoint + sequences + settings), the number of videos and the summary metrics
of ``tasks.evaluate.SUMMARY``. Appending reads the table, adds the row, writes a temp file beside
it and renames it over the old one (``os.replace``), under an exclusive lock: a crash or a
concurrent append never leaves a half-written or a shorter table.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from tasks.common.io import file_sha256


def inputs_key(files: Iterable[str | Path], settings: dict) -> str:
    """A short hash of the files' contents (in the order given) and of JSON-able ``settings``."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in files:
        h.update(str(Path(path).name).encode())
        h.update(file_sha256(path).encode())
    return h.hexdigest()[:16]


def read_history(path: str | Path) -> pd.DataFrame:
    """The history table; empty when there is none yet."""
    path = Path(path)
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_history(path: str | Path, row: dict) -> pd.DataFrame:
    """Add ``row`` to the table at ``path`` atomically; returns the whole table."""
    path = Path(path)
    with _locked(path):
        old = read_history(path)
        new = pd.DataFrame([row])
        table = new if old.empty else pd.concat([old, new], ignore_index=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        os.close(fd)
        try:
            table.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return table


def table_rows(table: pd.DataFrame, last: int = 100) -> list[dict]:
    """The newest ``last`` rows as JSON-safe dicts (timestamps as ISO text, NaN as None), newest first."""
    return json.loads(table.tail(last).iloc[::-1].to_json(orient="records", date_format="iso"))
