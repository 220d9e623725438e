"""Figures shared by ``scripts.make_figures`` and the two notebooks: margin comparisons, the
frequency manipulations of the HMT supplement, and the NADs of several architectures.

Plotting only: every function takes arrays computed by the library and returns a matplotlib
figure at ``DPI`` dots per inch; :func:`utils.hmt.plots.save_figure` writes one reproducibly (no
timestamps or version in the PNG).
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .common.dct import cutoff_low, flip, high_pass, low_pass  # noqa: E402
from .hmt.plots import swarm_plot  # noqa: E402
from .nad.plots import draw_nad  # noqa: E402

DPI = 90
MANIPULATIONS = ("original", "flip", "low_pass", "high_pass", "cutoff_low")


def margin_panels(panels, log=False, width=5.5):
    """One swarm plot per panel, side by side.

    panels: list of (title, curves), curves a list of (margins [n_subspaces, N] in L2,
    label, colour) drawn on the same axes. log: logarithmic margin axis (for curves whose
    margins differ by orders of magnitude). Returns the figure."""
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 3.6), squeeze=False,
                             dpi=DPI)
    for ax, (title, curves) in zip(axes[0], panels):
        for margins, label, color in curves:
            swarm_plot(ax, margins, color=color, label=label)
        high = max(np.nanmax(m) for m, _, _ in curves)  # swarm_plot fixed the first curve's
        if log:
            low = min(np.nanmin(m[m > 0]) for m, _, _ in curves)
            ax.set_yscale("log")
            ax.set_ylim(low / 1.5, high * 1.5)
        else:
            ax.set_ylim(0, high * 1.05)
        ax.set_title(title, fontsize=10)
        if any(label for _, label, _ in curves):
            ax.legend(fontsize=8, loc="upper left")
    return fig


def manipulate(images, band):
    """The frequency manipulations of the HMT supplement applied to ``images`` [N, C, H, W]:
    a dict name -> [N, C, H, W] for the names of MANIPULATIONS (``band``: side of the DCT
    block kept by low_pass/high_pass and removed by cutoff_low)."""
    return {"original": images, "flip": flip(images), "low_pass": low_pass(images, band),
            "high_pass": high_pass(images, band), "cutoff_low": cutoff_low(images, band)}


def _display(image):
    """[C, H, W] tensor -> [H, W(, C)] array in [0, 1], stretched between its min and max
    (flipped and high-passed images are not valid images: they leave [0, 1])."""
    x = image.detach().double().numpy()
    x = (x - x.min()) / max(x.max() - x.min(), 1e-12)
    return x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)


def frequency_figure(images, band, title=None, size=1.6, dpi=DPI):
    """Grid of the frequency manipulations: one row per image of ``images`` [N, C, H, W] in
    [0, 1], one column per manipulation (see :func:`manipulate`). Each panel is stretched to
    its own min-max for display. Panels are at least ``size`` inches and at least one screen
    pixel per image pixel at ``dpi`` (downsampling would average flipped and high-passed
    images, whose energy is at the highest frequencies, into flat grey). Returns the figure."""
    out = manipulate(images, band)
    n = len(images)
    size = max(size, 1.05 * images.shape[-1] / dpi)
    fig, axes = plt.subplots(n, len(MANIPULATIONS), squeeze=False,
                             figsize=(size * len(MANIPULATIONS), size * n + 0.4), dpi=dpi)
    for j, name in enumerate(MANIPULATIONS):
        label = name if name in ("original", "flip") else f"{name} ({band}x{band})"
        axes[0, j].set_title(label, fontsize=8)
        for i in range(n):
            axes[i, j].imshow(_display(out[name][i]), cmap="gray", interpolation="nearest")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def nads_figure(nads_by_arch, count=6, size=1.15):
    """The first ``count`` NADs of each architecture: for each entry of ``nads_by_arch``
    (name -> NADs [k, 1024]) a row of NADs in pixel space (diverging colours, symmetric around
    0) and a row of their Fourier energy |DFT|^2 (zero frequency in the centre)."""
    rows = 2 * len(nads_by_arch)
    fig, axes = plt.subplots(rows, count, squeeze=False, figsize=(size * count + 0.9, size * rows),
                             dpi=DPI)
    for r, (arch, nads) in enumerate(nads_by_arch.items()):
        side = int(round(np.sqrt(nads.shape[1])))
        for i in range(count):
            draw_nad(axes[2 * r, i], axes[2 * r + 1, i], nads[i].reshape(side, side))
            if r == 0:
                axes[0, i].set_title(f"NAD {i}", fontsize=8)
        axes[2 * r, 0].set_ylabel(f"{arch}\npixels", fontsize=8)
        axes[2 * r + 1, 0].set_ylabel(f"{arch}\n|DFT|^2", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def poison_figure(images, poisoned, labels, count=6, gain=10.0):
    """Clean images, their poisoned version and the difference (times ``gain``, grey = 0),
    for the first ``count`` of ``images``/``poisoned`` [N, C, H, W] with ``labels`` [N]."""
    count = min(count, len(images))
    fig, axes = plt.subplots(3, count, squeeze=False, figsize=(1.5 * count, 4.8), dpi=DPI)
    diff = (poisoned - images).detach()
    for i in range(count):
        axes[0, i].imshow(_clip(images[i]), cmap="gray")
        axes[0, i].set_title(f"class {int(labels[i])}", fontsize=8)
        axes[1, i].imshow(_clip(poisoned[i]), cmap="gray")
        axes[2, i].imshow(_clip(0.5 + gain * diff[i]), cmap="gray")
    for row, name in enumerate(("clean", "poisoned", f"difference x{gain:g}")):
        axes[row, 0].set_ylabel(name, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def _clip(image):
    """[C, H, W] tensor -> [H, W(, C)] array clipped to [0, 1] (no stretching)."""
    x = torch.as_tensor(image).detach().clamp(0, 1).double().numpy()
    return x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)
