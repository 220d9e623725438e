"""Side-by-side summary of two margin runs on the same samples (e.g. standard vs robust)."""
import numpy as np
from scipy.stats import bootstrap

from ..common.errors import UserError
from .margins import load_margin_run


def ratio_interval(reference, other, level=0.95, resamples=5000, seed=0):
    """Paired percentile-bootstrap interval of median(other) / median(reference), margins
    [N] of the same N samples under two models: the samples are resampled together, so the
    interval measures how much the ratio depends on which test samples were drawn.
    Returns (low, high)."""
    def ratio(a, b, axis):
        return np.median(b, axis=axis) / np.median(a, axis=axis)
    res = bootstrap((np.asarray(reference), np.asarray(other)), ratio, paired=True,
                    vectorized=True, confidence_level=level, n_resamples=resamples,
                    method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare_margins(reference, other):
    """Per-subspace median margins of two runs (folders written by utils.hmt.margins) and their
    ratio other / reference. Both must have measured the same samples in the same subspaces.

    Returns a dict: medians_reference, medians_other, ratio (lists over subspaces,
    low -> high frequency), smallest (index of the reference's smallest median),
    ratio_at_smallest with its 95 % paired bootstrap interval ratio_interval_at_smallest (see
    :func:`ratio_interval`; the subspace is kept fixed), and share_at_cap_reference /
    share_at_cap_other (fraction of (subspace, sample) pairs where DeepFool stopped at its
    iteration cap)."""
    (info_a, m_a, it_a), (info_b, m_b, it_b) = map(load_margin_run, (reference, other))
    if info_a.get("sample_indices") != info_b.get("sample_indices") or m_a.shape != m_b.shape \
            or info_a.get("subspaces") != info_b.get("subspaces"):
        raise UserError(f"{reference} and {other} measured different samples or subspaces; "
                        f"rerun them with the same `seed`, `samples`, `block_size` and "
                        f"`block_step`")
    med_a, med_b = np.median(m_a, axis=1), np.median(m_b, axis=1)
    smallest = int(np.argmin(med_a))
    cap_a = info_a["deepfool"]["max_iter"]
    cap_b = info_b["deepfool"]["max_iter"]
    return {"medians_reference": med_a.tolist(), "medians_other": med_b.tolist(),
            "ratio": (med_b / med_a).tolist(), "smallest": smallest,
            "ratio_at_smallest": float(med_b[smallest] / med_a[smallest]),
            "ratio_interval_at_smallest": ratio_interval(m_a[smallest], m_b[smallest]),
            "share_at_cap_reference": float(np.mean(it_a >= cap_a)),
            "share_at_cap_other": float(np.mean(it_b >= cap_b)),
            "subspaces": info_a.get("subspaces")}
