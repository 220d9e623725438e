"""The swarm plot of a margin distribution over a list of subspaces."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..common.plotting import figure_png  # noqa: E402


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


def margin_plot_png(margins, title):
    """Swarm plot of ``margins`` [n_subspaces, N] as PNG bytes."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    swarm_plot(ax, margins)
    ax.set_title(title)
    return figure_png(fig)
