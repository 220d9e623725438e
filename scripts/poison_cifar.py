"""NAD poisoning of CIFAR-10 (NADs paper, Sec. 4): every training image of class t gets its
coefficient along a NAD carrier (index, channel and sign set by t) fixed to +-eps; a network
trained on this set is tested on the clean test set. Needs the real CIFAR-10 (--data-dir,
--download) and the NADs of the architecture (nads/<Arch>_NADs.npy or --nads)."""
import argparse

from utils.common.cli import (device_name, nonnegative_int, path_name, positive_float,
                              positive_int, run, seed_number)
from utils.common.training import pick_device
from utils.nad.poison_experiment import PoisonConfig, run_poison_experiment


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", default="ResNet18",
                   help="a NAD architecture (models.NAD_ARCHITECTURES), default ResNet18")
    p.add_argument("--nads", type=path_name, help="NAD file (default: nads/<Arch>_NADs.npy)")
    p.add_argument("--nad-index", type=nonnegative_int, default=0, help="first carrier NAD")
    p.add_argument("--eps", type=positive_float, default=0.05,
                   help="carrier coefficient magnitude (default 0.05)")
    p.add_argument("--epochs", type=positive_int, default=50)
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--data-dir", type=path_name, default="data",
                   help="folder holding cifar-10-batches-py")
    p.add_argument("--download", action="store_true", help="download CIFAR-10 if missing")
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--results-dir", type=path_name, default="Results")
    p.add_argument("--resume", action="store_true", help="resume an interrupted training")
    args = p.parse_args()
    args.device = pick_device(args.device)
    record, out_dir = run_poison_experiment(PoisonConfig(**vars(args)))
    print(f"{args.arch} trained on poisoned CIFAR-10: clean test accuracy "
          f"{100 * record['accuracy_clean_test']:.2f}%, poisoned train accuracy "
          f"{100 * record['accuracy_poisoned_train']:.2f}%, poisoned test accuracy "
          f"{100 * record['accuracy_poisoned_test']:.2f}%")
    for name in ("run.json", "model.t7"):
        print(f"wrote {out_dir / name}")


if __name__ == "__main__":
    run(main)
