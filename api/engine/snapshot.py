"""The case cube on disk, so that a restarted server answers in seconds, not minutes.

At metro scale the cube is read from ~19 M rollup rows (about 100 s); a restarted process
(or a second uvicorn worker) instead maps the last snapshot of the same database and
boundaries: figures are served at once, exact when no case arrived since, and the cube is
then refreshed in the background like any stale cube. Arrays are plain ``.npy`` files mapped
read-only, so that workers on one machine share the pages. A snapshot is written to a
temporary folder and renamed into place: a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

_folder: Path | None = None  # set by the app (settings.cache_dir); None: no snapshots
_writing = threading.Lock()


def enable(cache_dir: Path | None) -> None:
    """Keep cube snapshots under ``cache_dir/cube`` (None: keep none)."""
    global _folder
    _folder = Path(cache_dir) / "cube" if cache_dir is not None else None


def _home(database_key: str) -> Path | None:
    if _folder is None:
        return None
    return _folder / hashlib.sha256(database_key.encode()).hexdigest()[:16]


def load(database_key: str, boundaries_version: int) -> tuple[dict, dict[str, np.ndarray]] | None:
    """(meta, arrays mapped read-only) of the newest snapshot of this database taken under
    the same boundaries, or None."""
    home = _home(database_key)
    if home is None or not (home / "current").exists():
        return None
    try:
        folder = home / (home / "current").read_text().strip()
        meta = json.loads((folder / "meta.json").read_text())
        if meta["boundaries_version"] != boundaries_version:
            return None
        arrays = {path.stem: np.load(path, mmap_mode="r") for path in sorted(folder.glob("*.npy"))}
    except (OSError, ValueError, KeyError):
        return None  # unreadable or half-removed: rebuild from the database
    return meta, arrays


def save(database_key: str, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` and ``meta`` (JSON; with ``boundaries_version`` and ``version``) as
    the newest snapshot of this database; older ones are removed."""
    home = _home(database_key)
    if home is None:
        return
    with _writing:
        home.mkdir(parents=True, exist_ok=True)
        name = f"b{meta['boundaries_version']}-c{meta['version']}"
        if (home / name).exists():
            return
        work = Path(tempfile.mkdtemp(dir=home, prefix=".writing-"))
        for array_name, array in arrays.items():
            np.save(work / f"{array_name}.npy", np.ascontiguousarray(array))
        (work / "meta.json").write_text(json.dumps(meta))
        os.replace(work, home / name)
        pointer = home / ".current"
        pointer.write_text(name)
        os.replace(pointer, home / "current")
        for old in home.iterdir():  # mapped files stay readable until their readers let go
            if old.is_dir() and old.name != name:
                shutil.rmtree(old, ignore_errors=True)
