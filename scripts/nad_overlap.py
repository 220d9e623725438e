"""How close two sets of NADs are: the overlap ||A_k^T B_k||_F^2 / k of their top-k subspaces
(1: the same subspace, k/1024 on average for random subspaces), e.g. finite-difference against
autograd NADs of one architecture."""
import argparse

from utils.common.cli import path_name, positive_int_list, run
from utils.common.errors import UserError
from utils.nad.estimation import subspace_overlap
from utils.nad.linear_data import load_nads

DEFAULT_K = (1, 5, 20, 100)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("a", type=path_name, help="a <Arch>_NADs.npy file")
    p.add_argument("b", type=path_name, help="another one")
    p.add_argument("--k", type=positive_int_list,
                   help=f"subspace sizes, comma-separated (default "
                        f"{','.join(map(str, DEFAULT_K))}: those the two files hold)")
    args = p.parse_args()
    a, b = load_nads(args.a), load_nads(args.b)
    most = min(len(a), len(b))
    if args.k is None:
        sizes = [k for k in DEFAULT_K if k <= most]
    elif max(args.k) > most:
        raise UserError(f"--k {max(args.k)} is more than the files hold ({len(a)} and {len(b)} "
                        f"NADs); ask for at most {most}")
    else:
        sizes = args.k
    for k in sizes:
        print(f"k = {k:4d}: overlap {subspace_overlap(a[:k], b[:k]):.3f} "
              f"(random subspaces: {k / a.shape[1]:.3f})")


if __name__ == "__main__":
    run(main)
