"""The README and the package stand alone: the math ships in docs/math.md, and no
link points outside the repository. The README stays short and names the commands CI
runs; the docs site lists every page, and every page speaks of the software."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))


def test_readme_points_to_the_math_inside_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert "docs/math.md" in readme and (ROOT / "docs" / "math.md").is_file()
    math = (ROOT / "docs" / "math.md").read_text()
    for topic in ("Elman", "mask", "bptt_truncate", "BPTT(K, K)", "path length", "central difference", "binary",
                  "digits", "adagrad", "rmsprop", "momentum", "adam", "global norm", "per value"):
        assert topic in math, topic


def test_nothing_points_outside_the_repository():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "fastrnn").rglob("*.py"))]
    for path in files:
        text = path.read_text()
        assert "../shared" not in text and "shared/SPEC" not in text and "shared/seeds" not in text, path


def test_every_relative_link_of_the_readme_exists():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme):
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_the_readme_is_at_most_15_kb_and_links_to_the_docs_site():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 15 * 1024, len(readme.encode())
    for page in ("getting-started.md", "cli.md", "api.md", "performance.md", "contributing.md"):
        assert f"(docs/{page})" in readme, page


def test_the_readme_commands_are_the_ones_ci_runs():
    """The first two lines install and train, then install and test; the docs command builds the site."""
    readme = (ROOT / "README.md").read_text().splitlines()
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme[2].strip() == "pip install . && fastrnn train --task binary --iters 20000"
    assert readme[3].strip() == "pip install -e '.[test]' && python -m pytest -q"
    assert readme[3].strip() in ci.splitlines()
    docs_command = "pip install -e '.[docs]' && mkdocs build --strict"
    assert docs_command in "\n".join(readme)
    assert docs_command in ci


def test_every_docs_page_is_in_the_site_and_every_listed_page_exists():
    config = (ROOT / "mkdocs.yml").read_text()
    listed = set(re.findall(r"^\s*- (?:[^:#]+: )?([\w./-]+\.md)\s*$", config, flags=re.M))
    assert listed == {p.name for p in PAGES}, (listed ^ {p.name for p in PAGES})
    assert "font: false" in config  # the site builds offline: no web fonts fetched


def test_every_relative_link_of_the_docs_exists():
    """Links are relative to the page; the benchmark plots are added to the site under benchmarks/results/."""
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            here = (page.parent / target).exists() or (target.startswith("benchmarks/results/") and (ROOT / target).exists())
            assert here, f"{page.name}: {target}"


def test_the_pages_speak_of_the_software_not_of_its_making():
    words = re.compile(r"\bissue \d|#\d{3,}|\bitem \d|\bthe (?:lab|course|material)\b|targets? missed|\bcommit [0-9a-f]{7}|"
                       r"\bXeon\b|during development", re.I)
    for path in [ROOT / "README.md", *PAGES]:
        found = words.findall(path.read_text())
        assert not found, f"{path.name}: {found}"
