"""Neural Anisotropy Directions of an architecture: principal directions of the input
gradients of many random one-output networks at one fixed point (NADs paper, Sec. 3). Writes
<Arch>_NADs.npy, <Arch>_eigenvals.npy, <Arch>_NADs.json and <Arch>_NADs.png to Results/nads/
(--out-dir nads replaces the shipped ones). Ctrl-C keeps the gradients so far for --resume."""
import argparse

from models import NAD_ARCHITECTURES
from utils.common.cli import (device_name, nonnegative_float, path_name, positive_float,
                              positive_int, run, seed_number)
from utils.common.training import pick_device
from utils.nad.computation import DEFAULT_OUT_DIR, VMAP_NETWORKS, NADConfig, compute_nads


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", required=True, choices=list(NAD_ARCHITECTURES))
    p.add_argument("--networks", type=positive_int, default=10_000,
                   help="random networks (default 10,000)")
    p.add_argument("--k", type=positive_int, default=1024, help="NADs to keep (default 1024)")
    p.add_argument("--method", choices=["fd", "autograd"], default="fd",
                   help="central finite differences (the paper's, default) or exact gradients")
    p.add_argument("--step", type=positive_float, default=100.0,
                   help="finite-difference step (default 100)")
    p.add_argument("--seed", type=seed_number, default=0, help="seed of x0 and of the networks")
    p.add_argument("--networks-per-pass", type=positive_int,
                   help=f"networks evaluated by one vmap call (default: 1 for fd; for autograd "
                        f"{VMAP_NETWORKS}, or 1 above a million parameters)")
    p.add_argument("--batch-size", type=positive_int, default=8192,
                   help="at most this many (network, input) evaluations per forward pass "
                        "(default 8192)")
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--out-dir", type=path_name, default=str(DEFAULT_OUT_DIR),
                   help=f"output folder (default {DEFAULT_OUT_DIR}; 'nads' replaces the "
                        f"shipped NADs)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--save-every", type=nonnegative_float, default=120.0, metavar="SECONDS",
                   help="save the gradients so far for --resume this often (default 120; "
                        "0: after every round of passes); Ctrl-C saves them too")
    args = p.parse_args()
    config = NADConfig(args.arch, args.networks, args.k, args.method, args.step, args.seed,
                       args.networks_per_pass, args.batch_size, pick_device(args.device),
                       args.out_dir, args.resume, args.save_every)
    paths = compute_nads(config)
    for key in ("nads", "eigenvals", "json", "png"):
        print(f"wrote {paths[key]}")


if __name__ == "__main__":
    run(main)
