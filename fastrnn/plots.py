"""Pictures of runs and studies, drawn with matplotlib's non-interactive Agg backend
(no screen needed). Each function writes one PNG and returns its path."""

from pathlib import Path

import numpy as np

from . import _files
from .exceptions import InvalidArgument


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_png(out):
    """Refuse an --out that does not end in .png (before any work is done)."""
    if Path(out).suffix.lower() != ".png":
        raise InvalidArgument(f"--out {out} must end in .png")
    return Path(out)


def _save(fig, out):
    """Write the figure under a temporary name beside ``out``, then rename it (never a partial PNG)."""
    out = check_png(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _files.replace_file(out, lambda fh: fig.savefig(fh, dpi=110, bbox_inches="tight", format="png"), what="--out")
    except OSError as exc:
        raise InvalidArgument(f"cannot write --out {out}: {exc.strerror or exc}") from None
    finally:
        _pyplot().close(fig)
    return out


def plot_runs(runs, out):
    """Loss, error and accuracy against iteration for several runs overlaid.

    Text runs (a ``bpc`` column) get bits per character (``val_bpc`` dashed), the
    smoothed loss and the next-character accuracy instead.

    ``runs`` is a list of (label, DataFrame) pairs of metrics rows. Runs logged with
    ``--log-spectrum`` get two more panels: W's spectral radius, and mean |G_p| at
    the shortest and longest path length.
    """
    plt = _pyplot()
    spectral = any("spectral_radius" in frame for _, frame in runs)
    panels = [("loss", "loss (mean over interval)", True), ("error", "wrong positions per sample", False),
              ("accuracy", "accuracy (last 1000 samples)", False)]
    if any("bpc" in frame for _, frame in runs):  # text runs: bits per character, held out dashed
        panels = [("bpc", "bits per character (val dashed)", False), ("smooth_loss", "smoothed loss (min-char-rnn)", False),
                  ("char_accuracy", "next-character accuracy", False)]
    if spectral:
        panels.append(("spectral_radius", "spectral radius of W0", False))
        panels.append(("paths", "mean |G_p| of W0", True))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (col, title, log) in zip(axes, panels):
        for i, (label, frame) in enumerate(runs):
            color = f"C{i % 10}"
            if col == "paths":
                # the longest path that carries gradient (W's use at step 0 meets h_0 = 0)
                cols = [c for c in frame.columns if c.startswith("path_grad_") and (frame[c] > 0).any()]
                if cols:
                    ax.plot(frame["iteration"], frame[cols[0]], color=color, label=f"{label}, p=0")
                    longest = cols[-1].removeprefix("path_grad_")
                    ax.plot(frame["iteration"], frame[cols[-1]], color=color, ls="--", label=f"{label}, p={longest}")
            elif col in frame:
                ax.plot(frame["iteration"], frame[col], color=color, label=label)
                if col == "bpc" and "val_bpc" in frame:
                    ax.plot(frame["iteration"], frame["val_bpc"], color=color, ls="--", label=f"{label}, held out")
        ax.set_title(title)
        ax.set_xlabel("iteration")
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    _legend(axes[-1], fontsize=7)
    return _save(fig, out)


#: The most entries a legend lists; beyond them it ends with one line saying how many more there are.
LEGEND_MAX = 12


def _legend(ax, fontsize=None):
    """The legend of ``ax``, at most :data:`LEGEND_MAX` entries (a legend of hundreds would dwarf the plot,
    and its colours repeat every ten lines anyway)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if len(handles) > LEGEND_MAX:
        from matplotlib.lines import Line2D

        total, more = len(handles), len(handles) - (LEGEND_MAX - 1)
        handles = handles[: LEGEND_MAX - 1] + [Line2D([], [], linestyle="none")]
        labels = labels[: LEGEND_MAX - 1] + [f"... and {more} more ({total} lines in all)"]
    ax.legend(handles, labels, fontsize=fontsize)


def plot_paths(profiles, out, title="path-length gradients"):
    """mean |G_p| against path length p (log scale), one line per (label, profile)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, profile in profiles:
        p = np.arange(len(profile))
        keep = profile > 0
        ax.semilogy(p[keep], profile[keep], marker="o", ms=3, label=label)
    ax.set_xlabel("path length p (recurrences between loss and weight use)")
    ax.set_ylabel("mean |G_p| of W0")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    _legend(ax)
    return _save(fig, out)
