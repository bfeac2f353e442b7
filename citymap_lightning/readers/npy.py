"""A square NumPy ``.npy`` matrix, its header checked before any memory is set aside."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from citymap_lightning import paths, validation
from citymap_lightning.errors import DataError
from citymap_lightning.readers.matrix import from_matrix
from citymap_lightning.tables import MatrixTable


def read_npy(path: Path, names_path: str | Path | None, symmetrize: bool) -> MatrixTable:
    """A square ``.npy`` matrix, with names from a text file (one per line) or ``0..n-1``.

    The header is read first: a file that is not a plain ``.npy`` array (a ``.npz``, a pickle), whose
    shape is not square, or that is shorter than its header claims is refused before any memory is
    set aside for it. Complex numbers are taken when every imaginary part is 0, refused otherwise.
    """
    size = paths.check_file(path, "data file").stat().st_size
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
        except (ValueError, OSError) as e:
            raise DataError(f"{path}: not a NumPy .npy array ({str(e).splitlines()[0]})") from None
        offset = f.tell()
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise DataError(f"{path}: the array holds {dtype}, not numbers")
    if len(shape) != 2 or shape[0] != shape[1]:
        raise DataError(f"{path}: the distance matrix is not square (shape {tuple(shape)})")
    if offset + shape[0] * shape[1] * dtype.itemsize > size:
        raise DataError(f"{path}: the file is shorter than the {shape[0]} x {shape[1]} array its header declares")
    try:
        d = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a NumPy .npy array ({str(e).splitlines()[0]})") from None
    if np.iscomplexobj(d):
        if np.any(d.imag != 0):
            raise DataError(f"{path}: the array holds complex numbers with non-zero imaginary parts")
        d = d.real
    names = None
    if names_path is not None:
        names_file = Path(names_path)
        text = paths.read_text(names_file, "names file")
        names = [line.strip() for line in io.StringIO(text, newline=None) if line.strip()]
        validation.check_names(str(names_file), names)
        if len(names) != d.shape[0]:
            raise DataError(f"{names_file}: {len(names)} names for the {d.shape[0]} x {d.shape[0]} matrix in {path}")
    return from_matrix(d.astype(np.float64), names, source=str(path), symmetrize=symmetrize, owned=True)
