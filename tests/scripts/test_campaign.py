"""scripts.campaign (utils/campaign.py): the tiny campaign runs every step end to end on the CPU,
marked as not results; the plan names every step; a budget too small stops cleanly; committed
results are copied in before a step, so that their cells are not run again."""
import json

from tests.helpers import run_command
from utils.campaign import CampaignConfig, copy_committed, run_campaign, steps


def test_the_tiny_campaign_runs_every_step(tmp_path):
    out = tmp_path / "campaign"
    proc = run_command("scripts.campaign", "--tiny", "--out", out, "--budget-s", "1200",
                       timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiny"] and not summary["results"]
    assert [s["step"] for s in summary["steps"]] == [s.name for s in steps()]
    assert all(s["status"] == "done" for s in summary["steps"]), summary["steps"]
    for record in summary["steps"]:
        assert record["cells_after"] > record["cells_before"] or record["kind"] == "run"
        assert (out / "steps" / f"{record['step']}.json").is_file()
    assert summary["device"] and summary["versions"]["torch"]
    assert "tiny: not results" in proc.stdout


def test_the_plan_names_every_step():
    proc = run_command("scripts.campaign", "--plan", "--budget-s", "600")
    assert proc.returncode == 0, proc.stderr
    for step in steps():
        assert f"  {step.name} " in proc.stdout
    assert "~" in proc.stdout  # estimates assumed until measured


def test_a_budget_too_small_stops_cleanly(tmp_path):
    summary = run_campaign(CampaignConfig(out=str(tmp_path), budget_s=30, tiny=True,
                                          only=["grid8-VGG11", "grid8-ResNet18"]),
                           progress=lambda line: None)
    assert [s["status"] for s in summary["steps"]] == ["stopped by the budget"]
    assert json.loads((tmp_path / "summary.json").read_text())["steps"][0]["calls"] == []


def test_committed_results_are_copied_in_first(tmp_path):
    """A sweep's committed CSV and JSON (docs/data/directional_bias/<Arch>/) are copied into
    the campaign folder, where none are yet, so that the sweep resumes after them."""
    committed = tmp_path / "docs_data" / "directional_bias" / "VGG11"
    committed.mkdir(parents=True)
    (committed / "fourier_directions.csv").write_text("phase,k1,k2\n")
    (committed / "fourier_directions.json").write_text("{}")
    (committed / "fourier_grid_cos.png").write_bytes(b"not copied")
    step = next(s for s in steps() if s.name == "grid8-VGG11")
    out = tmp_path / "campaign"
    copy_committed(step, out, tmp_path / "docs_data")
    copied = sorted(p.name for p in (out / "directional_bias" / "VGG11").iterdir())
    assert copied == ["fourier_directions.csv", "fourier_directions.json"]
    (out / "directional_bias" / "VGG11" / "fourier_directions.csv").write_text("newer")
    copy_committed(step, out, tmp_path / "docs_data")  # never over the campaign's own
    assert (out / "directional_bias" / "VGG11" / "fourier_directions.csv").read_text() == "newer"
