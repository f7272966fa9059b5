"""The README and the package stand alone: the math ships in docs/math.md, and no
link points outside the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
