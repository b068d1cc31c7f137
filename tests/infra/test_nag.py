"""cdk-nag AwsSolutions runs in every synth; nothing may be left unacknowledged or unexplained."""

from __future__ import annotations

from pathlib import Path

from tests.infra.conftest import Synth

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_aws_solutions_checks_find_nothing_unacknowledged(synth: Synth) -> None:
    # Given the app synthesized exactly as `cdk synth` runs it (the AwsSolutions pack is attached)
    report = synth.validation_report()
    violations = [
        f"{v['ruleName']} ({v['severity']}): {[c['constructPath'] for c in v['violatingConstructs']]}"
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
    ]
    # Then no error or warning is left, and the synth succeeded
    assert violations == []
    assert synth.returncode == 0, synth.output[-3000:]


def test_every_acknowledged_finding_carries_a_written_reason(synth: Synth) -> None:
    # Given the acknowledgments cdk-nag wrote into the template for auditors
    acknowledged = [
        (logical_id, rule)
        for logical_id, res in synth.resources.items()
        for rule in res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert acknowledged
    # Then each names an AwsSolutions rule and explains itself in at least a sentence
    for logical_id, rule in acknowledged:
        assert rule["id"].startswith("AwsSolutions-"), logical_id
        assert len(rule["reason"]) >= 60, (logical_id, rule)


def test_findings_are_acknowledged_in_one_module_only() -> None:
    callers = sorted(
        str(p.relative_to(REPO_ROOT))
        for p in [REPO_ROOT / "app.py", *(REPO_ROOT / "stacks").rglob("*.py")]
        if ".acknowledge(" in p.read_text()
    )
    assert callers == ["stacks/nag_suppressions.py"]
