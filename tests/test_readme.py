"""The README and its guides in docs/: every Python block runs as written, every CSV example reads, every
link and picture resolves, and the README stays a front page (at most 300 lines)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
CSV_BLOCK = re.compile(r"^```csv\n(.*?)^```", re.DOTALL | re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\]\(([^()\s]+)\)")  # the target of a link or a picture, nested ones included
CODE = re.compile(r"`[^`\n]*`")
README_LINES = 300


def documents() -> list[Path]:
    """README.md and every guide under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def blocks(pattern: re.Pattern) -> list[tuple[str, int, str]]:
    """(document, line number, code) of each fenced block the pattern matches, in every document."""
    found = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        found += [(name(path), text[: m.start()].count("\n") + 1, m.group(1)) for m in pattern.finditer(text)]
    return found


def python_blocks() -> list[tuple[str, int, str]]:
    return blocks(BLOCK)


def test_the_documents_have_python_blocks():
    assert len(python_blocks()) >= 2  # the scikit-learn and the Lightning snippets: nothing to run would pass vacuously


@pytest.mark.slow
@pytest.mark.parametrize(
    ("document", "line", "code"), [pytest.param(d, n, c, id=f"{d}-line-{n}") for d, n, c in python_blocks()]
)
def test_block_runs_as_written(tmp_path: Path, document: str, line: int, code: str):
    """Run the block in a fresh interpreter. Its cwd is a scratch folder holding the repository's data/ and
    configs/ (links), so relative paths read as from the repository root and what it writes stays out of the tree.
    """
    for folder in ("data", "configs"):
        (tmp_path / folder).symlink_to(ROOT / folder, target_is_directory=True)
    script = tmp_path / f"block_line_{line}.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{document} line {line}:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("document", "line", "text"), [pytest.param(d, n, c, id=f"{d}-line-{n}") for d, n, c in blocks(CSV_BLOCK)]
)
def test_csv_example_reads(tmp_path: Path, document: str, line: int, text: str):
    """Each CSV example of a guide is a file the package reads as it is, with every place in it."""
    from citymap_lightning.readers import load_table

    path = tmp_path / "example.csv"
    path.write_text(text, encoding="utf-8")
    table = load_table(path)
    assert table.n == 3, f"{document} line {line}"


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_LINES, f"README.md has {lines} lines: move text into a guide in docs/"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a document's headings (outside code blocks), with GitHub's -1, -2 for repeats."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", text, flags=re.MULTILINE):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(path: Path) -> list[str]:
    """The link and picture targets of a document, outside code blocks and code spans."""
    return LINK.findall(CODE.sub("", FENCE.sub("", path.read_text(encoding="utf-8"))))


@pytest.mark.parametrize("document", documents(), ids=name)
def test_every_link_resolves(document: Path):
    """Every relative link (a file, a file's heading, or a heading of the same page) points at something."""
    broken = []
    for target in links(document):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        goal = (document.parent / file).resolve() if file else document
        if not goal.exists():
            broken.append(f"{target}: no such file")
        elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
            broken.append(f"{target}: no heading #{anchor} in {name(goal)}")
    assert not broken, f"{name(document)}: {broken}"


def test_readme_links_every_guide():
    """The README's table of contents reaches every guide, and each of its docs/*.md links is a real file."""
    linked = {t.partition("#")[0] for t in links(ROOT / "README.md") if t.startswith("docs/") and ".md" in t}
    assert linked, "the README links no guide"
    assert all((ROOT / t).is_file() for t in linked), linked
    guides = {name(p) for p in (ROOT / "docs").glob("*.md")}
    assert guides <= linked, f"guides the README does not link: {sorted(guides - linked)}"


def test_every_picture_is_shown():
    """Every picture in docs/ is shown by the README or a guide (a picture nobody links goes stale unseen)."""
    shown = set()
    for path in documents():
        shown |= {(path.parent / t).resolve() for t in links(path) if t.endswith(".png")}
    unshown = [name(p) for p in sorted((ROOT / "docs").glob("*.png")) if p.resolve() not in shown]
    assert not unshown, unshown
