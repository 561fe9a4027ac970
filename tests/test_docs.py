"""The documentation: README links resolve and the mkdocs site builds without warnings."""

import re
import subprocess
import sys

import pytest

from conftest import REPO


def test_readme_links_point_to_files():
    text = (REPO / "README.md").read_text()
    targets = [t for t in re.findall(r"\]\(([^)#]+)\)", text) if not t.startswith("http")]
    assert targets, "the README should link to its docs pages"
    missing = [t for t in targets if not (REPO / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_readme_stays_an_entry_point():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


def test_every_docs_page_is_in_the_site_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert pages and [p for p in pages if p not in nav] == []


def test_mkdocs_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra (mkdocs) is not installed")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                             str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "speed" / "index.html").is_file()
