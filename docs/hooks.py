"""mkdocs hooks.

* The benchmark plots that the performance page shows live in benchmarks/results/. They are
  added to the site under the same path, so that the block that benchmarks/run.py writes into
  docs/performance.md (which names ``benchmarks/results/throughput.png``) resolves.
* A notebook page rendered with stored Jupyter widgets (tqdm.auto's progress bars) would load
  the widgets' renderer from a CDN when it is viewed; the site uses nothing from the network,
  so that loader is taken out (the bars are not drawn; every other output is).
"""

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent


def on_files(files, config):
    for png in sorted((ROOT / "benchmarks" / "results").glob("*.png")):
        files.append(File(str(png.relative_to(ROOT)), src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files


_WIDGET_LOADER = re.compile(r"<script>\s*\(function\(\) \{\s*function addWidgetsRenderer\(\).*?</script>", re.S)


def on_post_page(output, page, config):
    if page.file.src_uri.endswith(".ipynb"):
        output = _WIDGET_LOADER.sub("", output)
    return output
