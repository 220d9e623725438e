"""Figures: the one way figures are saved (:func:`save_figure`), and the swarm plot of a margin
distribution over a list of subspaces."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import png_bytes, save_bytes  # noqa: E402


def swarm_plot(ax, margins, color="tab:blue", label=None, seed=0):
    """Draw ``margins`` [n_subspaces, N] (L2 norms) on ``ax``: one jittered column of points per
    subspace, low to high frequency from left to right, and the median of each as a line."""
    margins = np.asarray(margins, dtype=float)
    rng = np.random.default_rng(seed)
    n_sub, n = margins.shape
    xs = np.arange(n_sub)[:, None] + rng.uniform(-0.3, 0.3, size=(n_sub, n))
    ax.scatter(xs.ravel(), margins.ravel(), s=4, alpha=0.35, color=color, linewidths=0)
    ax.plot(np.arange(n_sub), np.nanmedian(margins, axis=1), color=color, lw=2,
            marker="o", ms=3, label=label)
    ax.set_xticks([0, n_sub - 1], ["low", "high"])
    ax.set_xlabel("DCT subspace (diagonal, low to high frequency)")
    ax.set_ylabel("margin (L2)")
    ax.set_xlim(-0.6, n_sub - 0.4)
    ax.set_ylim(bottom=0)


def save_figure(fig, path, tight=True, dpi=None):
    """Write ``fig`` as a PNG at ``path`` (atomically, without metadata) and close it. ``tight``:
    tight_layout first (not for figures whose colour bars span several axes, which it breaks).
    Returns ``path``."""
    save_bytes(path, figure_png(fig, tight, dpi))
    return path


def figure_png(fig, tight=True, dpi=None):
    """``fig`` as PNG bytes (see :func:`save_figure`); the figure is closed."""
    if tight:
        fig.tight_layout()
    try:
        return png_bytes(fig, **({"dpi": dpi} if dpi else {}))
    finally:
        plt.close(fig)


def margin_plot_png(margins, title):
    """Swarm plot of ``margins`` [n_subspaces, N] as PNG bytes."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    swarm_plot(ax, margins)
    ax.set_title(title)
    return figure_png(fig)
