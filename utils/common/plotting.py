"""The one way figures are saved: as PNG bytes without metadata (equal figures, equal files),
written atomically (utils.common.io). Uses matplotlib's Agg backend (no screen needed)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .io import png_bytes, save_bytes  # noqa: E402


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
