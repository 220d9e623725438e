"""Compare two margin runs on the same samples, e.g. a standard and a robust model: per-subspace
median margins, their ratio, and the share of DeepFool runs that hit the iteration cap.
Example:
  python -m scripts.compare_margins Results/margin_MNIST/LeNet Results/margin_MNIST_robust/LeNet"""
import argparse

from utils.common.cli import path_name, run
from utils.hmt.margin_compare import compare_margins


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("reference", type=path_name,
                   help="results folder of the reference run (e.g. standard)")
    p.add_argument("other", type=path_name,
                   help="results folder of the run to compare (e.g. robust)")
    a = p.parse_args()
    c = compare_margins(a.reference, a.other)
    print("subspace             reference   other   other/reference")
    for s, ma, mb, r in zip(c["subspaces"], c["medians_reference"], c["medians_other"],
                            c["ratio"]):
        print(f"{s:<20} {ma:9.3f} {mb:7.3f} {r:9.2f}")
    print(f"share at DeepFool's iteration cap: reference {100 * c['share_at_cap_reference']:.1f}%"
          f", other {100 * c['share_at_cap_other']:.1f}%")
    low, high = c["ratio_interval_at_smallest"]
    print(f"smallest reference median in {c['subspaces'][c['smallest']]}: "
          f"ratio {c['ratio_at_smallest']:.2f} (95% paired bootstrap over the samples: "
          f"{low:.2f}-{high:.2f})")


if __name__ == "__main__":
    run(main)
