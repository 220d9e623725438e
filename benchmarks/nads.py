"""NAD estimation for LeNet: the vectorised implementation (networks drawn straight into
stacked parameters, then one torch.func.vmap call over them) against a one-network-at-a-time
loop (build a module, take its gradient), in the same run, on the same seed, checking that
both give the same gradients.

Both finite differences (the paper's method, step 100) and autograd are measured; each time
covers what ``utils.nad.estimation.iter_gradients`` does: drawing the networks, then their
gradients.
Finite differences are compute-bound (every network already sees a batch of 2,048 perturbed
inputs) and vectorising them over networks does not pay on a CPU, so the library loops over
networks for them by default; autograd (one input per network) is where vectorising pays,
and the last line is its speedup.

    python -m benchmarks.nads [--fd-networks 16] [--autograd-networks 2048]
"""
import argparse
import time

import torch

from models import build_nad_model
from utils.nad.computation import default_networks_per_pass
from utils.nad.estimation import evaluation_point, iter_gradients


def estimate(method, networks, networks_per_pass, batch_size):
    build = lambda: build_nad_model("LeNet")  # noqa: E731
    start = time.perf_counter()
    grads = torch.cat([g for _, g in iter_gradients(build, networks, evaluation_point(0), method,
                                                    seed=0, networks_per_pass=networks_per_pass,
                                                    batch_size=batch_size)])
    return grads, time.perf_counter() - start


def compare(method, networks, batch_size, passes):
    estimate(method, 2, 2, batch_size)  # warm-up
    loop, t_loop = estimate(method, networks, 1, 2048)
    vec, t_vec = estimate(method, networks, passes, batch_size)
    error = ((vec - loop).abs().max() / loop.abs().max()).item()
    if error > 1e-5:
        raise SystemExit(f"{method}: vectorised and loop gradients differ (relative {error:.1e})")
    print(f"LeNet {method}, {networks} networks: loop {t_loop:.2f} s "
          f"({1e3 * t_loop / networks:.1f} ms/network), vectorised {t_vec:.2f} s "
          f"({1e3 * t_vec / networks:.1f} ms/network), {t_loop / t_vec:.2f}x, "
          f"max relative difference {error:.1e}")
    return t_loop / t_vec


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fd-networks", type=int, default=16)
    p.add_argument("--autograd-networks", type=int, default=2048)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    compare("fd", args.fd_networks, 8192, 16)
    speedup = compare("autograd", args.autograd_networks, 8192,
                      default_networks_per_pass("LeNet", "autograd"))
    print(f"speedup: {speedup:.2f}x")


if __name__ == "__main__":
    main()
