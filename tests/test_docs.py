"""The documentation builds with warnings as errors, and every Python example in
it and in the README runs as written, so that no example can rot.

A block that cannot run here (it needs a cluster, say) is preceded by a line
``<!-- not run: the reason -->``, which the reader of the Markdown sees too.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, dedented, in order (skipping
    those marked not to run)."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match or not match.group(2):
            i += 1
            continue
        indent, language = match.groups()
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        previous = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        if language == "python" and not previous.startswith("<!-- not run:"):
            blocks.append("\n".join(line[len(indent):] for line in lines[i + 1:end]))
        i = end + 1
    return blocks


def test_every_page_is_in_the_site():
    index = (ROOT / "docs" / "index.md").read_text()
    for page in PAGES[1:]:
        if page.stem != "index":
            assert f"\n{page.stem}\n" in index, f"{page.name} is not in docs/index.md's toctree"


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_the_examples_run(page, tmp_path):
    blocks = python_blocks(page)
    # one process per page: its blocks run in order, sharing names, in a
    # scratch folder (examples may write files); matplotlib draws off-screen
    script = "import matplotlib\nmatplotlib.use('Agg')\n" + "\n\n".join(blocks)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{page.name}:\n{result.stderr[-3000:]}"


def test_the_documentation_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("numpydoc")
    # -n: every cross-reference resolves (other projects' names through the
    # inventories conf.py writes, so no network is needed)
    result = subprocess.run([sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q",
                             "-b", "html", str(ROOT / "docs"), str(tmp_path / "html")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    index = (tmp_path / "html" / "index.html").read_text()
    assert "&#169;." not in index and "©." not in index        # a footer with a holder
    assert (tmp_path / "html" / "api.html").exists()
    api = (tmp_path / "html" / "api.html").read_text()
    for name in ("archfit.fit", "FitModel", "Hyperparameters", "select", "MLPClassifier",
                 "Trainer"):
        assert name in api, name
