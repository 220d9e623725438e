"""Figures of the NAD paper: NADs with their Fourier energy, accuracy heatmaps over Fourier
directions, and accuracy against the NAD index."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..common.plotting import save_figure  # noqa: E402


def fourier_energy(image):
    """|DFT|^2 of a 2-D image, zero frequency in the centre (fftshift)."""
    return np.abs(np.fft.fftshift(np.fft.fft2(image))) ** 2


def draw_nad(ax_pixels, ax_fourier, image):
    """One NAD ``image`` [H, W]: in pixel space on ``ax_pixels`` (diverging colours symmetric
    around 0) and its Fourier energy on ``ax_fourier`` (zero frequency in the centre)."""
    vmax = np.abs(image).max()
    ax_pixels.imshow(image, cmap="BrBG", vmin=-vmax, vmax=vmax)
    ax_fourier.imshow(fourier_energy(image), cmap="magma")


def save_nad_figure(path, nads, singular_values, count=8, title=None):
    """The first ``count`` NADs [k, H*W] in pixel space (top row, diverging colours symmetric
    around 0) and their Fourier energy (bottom row, zero frequency in the centre)."""
    count = min(count, len(nads))
    side = int(round(np.sqrt(nads.shape[1])))
    fig, axes = plt.subplots(2, count, figsize=(1.7 * count, 3.7), dpi=120, squeeze=False)
    for i in range(count):
        draw_nad(axes[0, i], axes[1, i], nads[i].reshape(side, side))
        axes[0, i].set_title(f"NAD {i}\nsv {singular_values[i]:.3g}", fontsize=8)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel("|DFT|^2", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def save_fourier_heatmap(path, freqs, accuracy, title):
    """Heatmap of ``accuracy`` [n, n] (fractions; NaN = not computed) over the frequency grid
    ``freqs`` [n] on both axes (rows k1, columns k2; zero frequency where freqs == 0)."""
    fig, ax = plt.subplots(figsize=(5, 4.3), dpi=120)
    im = ax.imshow(100 * np.asarray(accuracy, dtype=float), cmap="viridis", vmin=50, vmax=100)
    ticks = np.arange(len(freqs))
    if len(freqs) <= 16:  # small grids: write the accuracy in every cell
        for (i, j), a in np.ndenumerate(100 * np.asarray(accuracy, dtype=float)):
            ax.text(j, i, f"{a:.0f}", ha="center", va="center", fontsize=6,
                    color="black" if a > 75 else "white")
    ax.set_xticks(ticks, [str(f) for f in freqs], fontsize=7)
    ax.set_yticks(ticks, [str(f) for f in freqs], fontsize=7)
    ax.set_xlabel("k2 (horizontal frequency)")
    ax.set_ylabel("k1 (vertical frequency)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="test accuracy (%)")
    return save_figure(fig, path)


def save_nad_curve(path, indices, accuracy, title):
    """Test accuracy (fractions) against the NAD index."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(indices, 100 * np.asarray(accuracy, dtype=float), marker="o", ms=3)
    ax.axhline(50, color="gray", lw=0.8, ls="--")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(-0.5, 1.3 * max(indices) + 1)  # no empty negative half of the symlog axis
    ax.set_xlabel("NAD index")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(40, 101)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def _heatmap(ax, accuracy, freqs, title, cmap="viridis", vmin=50, vmax=100):
    im = ax.imshow(accuracy, cmap=cmap, vmin=vmin, vmax=vmax)
    ticks = np.arange(0, len(freqs), 2)
    ax.set_xticks(ticks, [str(freqs[t]) for t in ticks], fontsize=6)
    ax.set_yticks(ticks, [str(freqs[t]) for t in ticks], fontsize=6)
    ax.set_title(title, fontsize=8)
    return im


def save_grid_comparison(path, freqs, rows, titles=("this repository", "authors' website table",
                                                   "ours - published")):
    """One row per architecture: our accuracy grid, the published one and their difference
    (all [n, n] in %, NaN = missing; rows: list of (arch, ours, published)), rows k1 (vertical
    frequency), columns k2. ``titles``: of the three panels of a row (for other comparisons)."""
    fig, axes = plt.subplots(len(rows), 3, figsize=(10, 3.1 * len(rows)), dpi=120,
                             squeeze=False)
    for (arch, ours, published), ax in zip(rows, axes):
        im = _heatmap(ax[0], ours, freqs, f"{arch}, {titles[0]}")
        _heatmap(ax[1], published, freqs, f"{arch}, {titles[1]}")
        fig.colorbar(im, ax=ax[:2], label="test accuracy (%)", shrink=0.8)
        diff = _heatmap(ax[2], ours - published, freqs, f"{arch}: {titles[2]}",
                        cmap="RdBu_r", vmin=-50, vmax=50)
        fig.colorbar(diff, ax=ax[2], label="points", shrink=0.8)
        ax[0].set_ylabel("k1 (vertical frequency)", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("k2 (horizontal frequency)", fontsize=7)
    return save_figure(fig, path, tight=False)


def save_nad_curve_comparison(path, ours, published):
    """Test accuracy (%) against the NAD index: ``ours`` (label, indices, accuracy) drawn over
    ``published`` {label: (indices, accuracy)}."""
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=120)
    for (label, (idx, acc)), colour in zip(published.items(),
                                           ["tab:orange", "tab:green", "tab:red", "tab:purple"]):
        ax.plot(idx, acc, color=colour, lw=0.8, alpha=0.6, label=label)
    label, idx, acc = ours
    ax.plot(idx, acc, color="black", marker="o", ms=2.5, lw=1, label=label)
    ax.axhline(50, color="gray", lw=0.8, ls="--")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(-0.5, 1100)
    ax.set_ylim(40, 101)
    ax.set_xlabel("NAD index")
    ax.set_ylabel("test accuracy on D(NAD_i) (%)")
    ax.legend(fontsize=7, loc="lower left")
    return save_figure(fig, path)


def poison_mnist_figure(rows):
    """Accuracies of the MNIST poisoning runs (utils.nad.poison_experiment) against the carrier's
    NAD index, one point per seed, the random carriers as a band: clean test digits, and test
    digits carrying the carrier of the class they share it with. Returns the figure."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    nad = [r for r in rows if r["carrier"] == "nad"]
    rand = [r for r in rows if r["carrier"] == "random"]
    for column, color, label in (("clean_accuracy", "tab:blue", "clean test digits"),
                                 ("swapped_accuracy", "tab:red",
                                  "test digits with the other class's carrier")):
        xs = [max(int(r["nad_index"]), 0.5) for r in nad]
        ax.scatter(xs, [100 * float(r[column]) for r in nad], color=color, s=14, label=label)
        if rand:
            values = [100 * float(r[column]) for r in rand]
            ax.axhspan(min(values), max(values), color=color, alpha=0.15)
    ax.set_xscale("log")
    ticks = sorted({max(int(r["nad_index"]), 0.5) for r in nad})
    ax.set_xticks(ticks, [str(int(t)) if t >= 1 else "0" for t in ticks])
    ax.set_xlabel("carrier: LeNet's NAD_i (bands: random carriers)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("LeNet on MNIST poisoned along NADs (eps 0.05)", fontsize=10)
    ax.legend(fontsize=8)
    return fig
