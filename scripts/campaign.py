"""The GPU campaign (utils/campaign.py): the deep-network half of the NAD paper and the MNIST
ResNet18 checkpoints, step after step in a fixed order of priority, within --budget-s seconds,
keeping every finished cell; --resume-from docs/data starts from the committed results, so a
lent session continues where the last one stopped. --tiny runs every step at tiny sizes on the
CPU in seconds (a check of the machinery, not results). --plan prints the plan and stops.

    python -m scripts.campaign --budget-s 480 --out $OUT/campaign --resume-from docs/data
"""
import argparse
import json

from utils.campaign import CampaignConfig, plan_lines, run_campaign, steps
from utils.common.cli import device_name, path_name, positive_float, run


def main():
    names = [s.name for s in steps()]
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-s", type=positive_float, default=480.0,
                   help="seconds the whole campaign may take (default 480)")
    p.add_argument("--out", type=path_name, default="Results/campaign",
                   help="folder of everything the campaign writes (default Results/campaign)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes on the CPU: not results")
    p.add_argument("--resume-from", type=path_name,
                   help="root of committed results to start from (e.g. docs/data)")
    p.add_argument("--device", type=device_name, default="auto")
    p.add_argument("--only", help="comma-separated steps to run (default all): "
                                  + ", ".join(names))
    p.add_argument("--plan", action="store_true", help="print the plan and stop")
    args = p.parse_args()
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    if only and set(only) - set(names):
        p.error(f"unknown step(s) {', '.join(sorted(set(only) - set(names)))}")
    if args.plan:
        chosen = [s for s in steps() if not only or s.name in only]
        cells = [(s, s.tiny_cells if args.tiny else s.cells) for s in chosen]
        print("plan from nothing done (seconds per cell; ~: assumed until measured):")
        for line in plan_lines(cells, {}, args.budget_s):
            print(line)
        return
    summary = run_campaign(CampaignConfig(args.out, args.budget_s, args.tiny, args.resume_from,
                                          args.device, only))
    print(json.dumps({s["step"]: s["status"] for s in summary["steps"]}, indent=1))
    print(f"wrote {args.out}/summary.json ({'tiny: not results' if args.tiny else 'results'})")


if __name__ == "__main__":
    run(main)
