"""A plain, non-editable install carries the default data and configs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_wheel_carries_data_and_configs_and_finds_them_from_anywhere(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path / "wheel")],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("citymap_lightning-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("data/europe36.csv", "configs/default.yaml", "configs/sgd.yaml", "configs/sphere.yaml", "basemap.npz"):
        assert f"citymap_lightning/{name}" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import citymap_lightning, sys; from citymap_lightning.paths import packaged_path; "
        "print(citymap_lightning.__file__); print(packaged_path('data', 'europe36.csv')); "
        "print(packaged_path('configs', 'default.yaml'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(target)}).stdout.split()  # fmt: skip
    assert all(line.startswith(str(target)) for line in out), out


def test_benchmarks_and_scripts_import_what_the_package_has():
    """Every ``from citymap_lightning... import name`` in benchmarks/ and scripts/ names something that exists.

    A module renamed in the package (``geo`` became ``geometry``) must not leave a benchmark that fails
    only when someone runs it.
    """
    import ast
    import importlib

    missing = []
    for path in sorted([*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "scripts").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("citymap_lightning"):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        missing.append(f"{path.name}: {node.module}.{alias.name}")
    assert not missing, missing
