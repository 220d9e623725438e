"""How close two sets of NADs are: the overlap ||A_k^T B_k||_F^2 / k of their top-k subspaces
(1: the same subspace, k/1024 on average for random subspaces), e.g. finite-difference against
autograd NADs of one architecture."""
import argparse

from utils.cli import run
from utils.errors import UserError
from utils.linear_data import load_nads
from utils.nads import subspace_overlap


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("a", help="a <Arch>_NADs.npy file")
    p.add_argument("b", help="another one")
    p.add_argument("--k", default="1,5,20,100", help="subspace sizes, comma-separated")
    args = p.parse_args()
    a, b = load_nads(args.a), load_nads(args.b)
    if a.shape[1] != b.shape[1]:
        raise UserError(f"the NADs have different sizes ({a.shape[1]} and {b.shape[1]}); "
                        f"compare NADs of the same input shape")
    for k in (int(t) for t in args.k.split(",")):
        if k > min(len(a), len(b)):
            raise UserError(f"k = {k} is more than the files hold ({len(a)} and {len(b)} NADs)")
        print(f"k = {k:4d}: overlap {subspace_overlap(a[:k], b[:k]):.3f} "
              f"(random subspaces: {k / a.shape[1]:.3f})")


if __name__ == "__main__":
    run(main)
