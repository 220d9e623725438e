"""Peak memory and time of the ImageNet margin pipeline on this machine's CPU: ResNet50 (random
weights), 8 random 224x224 images, all 14 DCT subspaces (16x16 blocks, step 16), a few
DeepFool iterations each. The original built every subspace as an explicit 150,528 x 768
matrix (462 MB each, 6.5 GB for the 14); ours projects in the DCT domain. Goal: peak resident
memory under 3 GB. Last line: `peak_rss_mb: <number>`.

    python -m benchmarks.imagenet_memory [--images 8] [--max-iter 3]
"""
import argparse
import resource
import tempfile
import time

import torch

from models import TransformLayer, build_model, normalized
from utils.common.data import IMAGENET_MEAN, IMAGENET_SHAPE, IMAGENET_STD
from utils.hmt.margins import margin_distribution
from utils.hmt.subspaces import diagonal_blocks


def peak_rss_mb():
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--max-iter", type=int, default=3, help="DeepFool iterations per subspace")
    args = p.parse_args()

    torch.manual_seed(0)
    model = normalized(build_model("ImageNet", "ResNet50"),
                       TransformLayer(IMAGENET_MEAN, IMAGENET_STD)).eval()
    images = torch.rand(args.images, *IMAGENET_SHAPE)
    subspaces = diagonal_blocks(16, 16, *IMAGENET_SHAPE)
    c, h, w = IMAGENET_SHAPE
    explicit_gb = len(subspaces) * c * h * w * subspaces[0].dim * 4 / 1e9
    print(f"ResNet50 (random weights), {args.images} random images {c}x{h}x{w}, "
          f"{len(subspaces)} subspaces of dimension {subspaces[0].dim}, DeepFool max_iter "
          f"{args.max_iter}, torch threads {torch.get_num_threads()}")
    print(f"explicit float32 bases of the original for these subspaces: {explicit_gb:.2f} GB "
          f"(never built here)")
    before = peak_rss_mb()
    print(f"peak RSS before the pipeline (torch + model + images): {before:.0f} MB")

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        margins = margin_distribution(model, images, subspaces, out, {"benchmark": True},
                                      batch_size=args.images, device="cpu",
                                      title="ResNet50, random weights",
                                      deepfool_args={"max_iter": args.max_iter})
    seconds = time.perf_counter() - start
    print(f"margins {tuple(margins.shape)} computed in {seconds:.1f} s "
          f"({seconds / len(subspaces):.1f} s per subspace)")
    peak = peak_rss_mb()
    print(f"goal: under 3072 MB -> {'met' if peak < 3072 else 'NOT met'}")
    print(f"peak_rss_mb: {peak:.0f}")


if __name__ == "__main__":
    main()
