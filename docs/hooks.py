"""mkdocs hook: the benchmark plots that the performance page shows live in benchmarks/results/.

They are added to the site under the same path, so that the block that benchmarks/run.py writes
into docs/performance.md (which names ``benchmarks/results/throughput.png``) resolves both on the
site and when the page is read in the repository.
"""

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent


def on_files(files, config):
    for png in sorted((ROOT / "benchmarks" / "results").glob("*.png")):
        files.append(File(str(png.relative_to(ROOT)), src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files
