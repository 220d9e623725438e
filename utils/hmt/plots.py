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


def synthetic_figure(rows, experiment):
    """The synthetic experiments' margins (utils.hmt.synthetic): for 'invariance', the median
    margin in each of the 21 DCT blocks (one line per seed) with S and S-perp marked, one panel
    per (S, model); for 'sudden', the median margin in Q, S and S-perp against the noise energy
    left in Q. Returns the figure."""
    models = sorted({r["model"] for r in rows})
    if experiment == "sudden":
        fig, axes = plt.subplots(1, len(models), figsize=(4.8 * len(models), 3.4), squeeze=False)
        for ax, model in zip(axes[0], models):
            rs = [r for r in rows if r["model"] == model]
            energies = sorted({float(r["q_energy"]) for r in rs})
            x = [max(e, 1e-4) for e in energies]  # 0 drawn at 1e-4 on the log axis
            for col, color, label in (("Q", "tab:red", "in Q"), ("perp", "tab:gray", "in S-perp"),
                                      ("S", "tab:blue", "in S")):
                for seed in sorted({r["seed"] for r in rs}):
                    ys = [next(float(r[col]) for r in rs if float(r["q_energy"]) == e
                               and r["seed"] == seed) for e in energies]
                    ax.plot(x, ys, color=color, marker="o", ms=3, alpha=0.8,
                            label=label if seed == "0" else None)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(x, ["0" if e == 0 else f"{e:g}" for e in energies])
            ax.set_xlabel("noise energy left in Q (fraction)")
            ax.set_ylabel("median margin (L2)")
            ax.set_title(f"{model}, S = low DCT block, Q = high block", fontsize=9)
            ax.legend(fontsize=7)
        return fig
    kinds = [k for k in ("low", "high", "random") if any(r["subspace"] == k for r in rows)]
    fig, axes = plt.subplots(len(models), len(kinds), squeeze=False,
                             figsize=(3.6 * len(kinds), 2.8 * len(models)))
    for i, model in enumerate(models):
        for j, kind in enumerate(kinds):
            ax = axes[i, j]
            for r in (r for r in rows if r["model"] == model and r["subspace"] == kind):
                ax.plot(range(21), [float(r[f"dct_{k:02d}"]) for k in range(21)],
                        color="tab:blue", marker="o", ms=2, alpha=0.7)
                ax.axhline(float(r["S"]), color="tab:red", lw=0.8)
                ax.axhline(float(r["perp"]), color="tab:gray", lw=0.8, ls="--")
            ax.set_yscale("log")
            ax.set_xticks([0, 20], ["low", "high"])
            ax.set_title(f"{model}, S = {kind}", fontsize=9)
            if j == 0:
                ax.set_ylabel("median margin (L2)")
    fig.suptitle("median margins per DCT block (blue), in S (red), in random subspaces of "
                 "S-perp (grey, dashed)", fontsize=9)
    return fig
