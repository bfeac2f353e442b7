"""Every file the user names is checked before it is read: it must exist, be a regular file, and fit a size ceiling.

Devices (``/dev/zero``), FIFOs and folders are refused in one line instead of hanging or filling
memory, and reads are bounded by the ceiling even if the file grows while it is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from citymap_lightning.errors import DataError

MAX_FILE_MB_ENV = "CITYMAP_MAX_FILE_MB"
"""Environment variable that raises (or lowers) the ceiling, in MB, for those who mean it."""

DEFAULT_MAX_FILE_MB = 4096
"""The default ceiling: a 20,000 x 20,000 matrix CSV is about 4 GB, a million-pair list 40 MB."""


def max_file_bytes() -> int:
    """The size ceiling in bytes (``CITYMAP_MAX_FILE_MB``, else :data:`DEFAULT_MAX_FILE_MB`)."""
    text = os.environ.get(MAX_FILE_MB_ENV, "")
    try:
        mb = float(text) if text else DEFAULT_MAX_FILE_MB
    except ValueError:
        mb = float("nan")
    if not mb > 0:
        raise DataError(f"{MAX_FILE_MB_ENV}={text!r}: expected a positive number of megabytes (inf for no ceiling)")
    return int(min(mb * 2**20, 2**50))  # "inf": a petabyte


def check_file(path: str | Path, what: str = "data file", allow_empty: bool = False) -> Path:
    """``path`` if it is a regular, readable file within the ceiling; else a one-line :class:`DataError`."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{path}: is not a regular file (a device, pipe or socket): give a {what}")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: the {what} is not readable (permission denied)")
    if info.st_size == 0 and not allow_empty:
        raise DataError(f"{path}: the {what} is empty")
    ceiling = max_file_bytes()
    if info.st_size > ceiling:
        raise DataError(
            f"{path}: the {what} is {info.st_size / 2**20:.3g} MB, above the {ceiling / 2**20:.3g} MB ceiling; "
            f"set {MAX_FILE_MB_ENV} to a larger number of MB if you mean it"
        )
    return path


def read_bytes(path: str | Path, what: str = "data file") -> bytes:
    """The bytes of a checked file, reading at most the ceiling (a file that grows past it is refused)."""
    path = check_file(path, what)
    ceiling = max_file_bytes()
    with open(path, "rb") as f:
        data = f.read(min(ceiling, path.stat().st_size) + 1)
    if len(data) > ceiling or len(data) > path.stat().st_size:
        raise DataError(f"{path}: the {what} grew while it was read: read it again once it is written")
    return data


def read_text(path: str | Path, what: str = "data file") -> str:
    """The UTF-8 text (BOM allowed) of a checked file; a one-line error when it is not UTF-8."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: the {what} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None


def packaged_path(kind: str, name: str) -> Path:
    """Path of a bundled file (``kind`` is ``data`` or ``configs``), installed or in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / kind / name, here.parent / kind / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"bundled {kind} file {name!r} is missing from the installation")
