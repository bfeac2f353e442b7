"""Every Python block in README.md runs as written, from a folder where the README's relative paths hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[int, str]]:
    """(line number, code) of each fenced Python block of the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_readme_has_python_blocks():
    assert len(python_blocks()) >= 2  # the scikit-learn and the Lightning snippets: nothing to run would pass vacuously


@pytest.mark.slow
@pytest.mark.parametrize(("line", "code"), [pytest.param(n, c, id=f"line-{n}") for n, c in python_blocks()])
def test_readme_block_runs_as_written(tmp_path: Path, line: int, code: str):
    """Run the block in a fresh interpreter. Its cwd is a scratch folder holding the repository's data/ and
    configs/ (links), so relative paths read as from the repository root and what it writes stays out of the tree.
    """
    for folder in ("data", "configs"):
        (tmp_path / folder).symlink_to(ROOT / folder, target_is_directory=True)
    script = tmp_path / f"readme_line_{line}.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"README.md line {line}:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
