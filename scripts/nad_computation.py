"""Neural Anisotropy Directions of an architecture: principal directions of the input
gradients of many randomly initialised one-output networks at one fixed point (NADs paper,
Sec. 3). Writes nads/<Arch>_NADs.npy, <Arch>_eigenvals.npy, <Arch>_NADs.json, <Arch>_NADs.png."""
import argparse

from models import NAD_ARCHITECTURES
from utils.cli import positive_int, run
from utils.nad_computation import compute_nads
from utils.training import pick_device


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", required=True, choices=list(NAD_ARCHITECTURES))
    p.add_argument("--networks", type=positive_int, default=10_000, help="random networks")
    p.add_argument("--k", type=positive_int, default=1024, help="NADs to keep")
    p.add_argument("--method", choices=["fd", "autograd"], default="fd",
                   help="central finite differences (the paper's) or exact gradients")
    p.add_argument("--step", type=float, default=100.0, help="finite-difference step")
    p.add_argument("--seed", type=int, default=0, help="seed of x0 and of the networks")
    p.add_argument("--networks-per-pass", type=positive_int,
                   help="networks evaluated by one vmap call (default: 1 for fd; for "
                        "autograd 64, or 1 above a million parameters)")
    p.add_argument("--batch-size", type=positive_int, default=8192,
                   help="at most this many (network, input) evaluations per forward pass")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--out-dir", default="nads")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    args = p.parse_args()
    paths = compute_nads(args.arch, args.networks, args.k, args.method, args.step, args.seed,
                         args.networks_per_pass, args.batch_size, pick_device(args.device),
                         args.out_dir, args.resume)
    for key in ("nads", "eigenvals", "json", "png"):
        print(f"wrote {paths[key]}")


if __name__ == "__main__":
    run(main)
