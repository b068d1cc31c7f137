"""`make e2e-localstack` skips, with the reason, the e2e tests LocalStack cannot pass, and only there.

The marks and the hook live in tests/e2e/conftest.py; here the real e2e tests are collected and run
against a LocalStack target that is not there (nothing listens, no outputs), so a test that is not
skipped before its fixtures reach the target fails instead of passing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.conftest import EMBEDDED, LOCALSTACK, skip_reason
from tests.infra.conftest import REPO_ROOT

# Each e2e test LocalStack cannot run, and a phrase its skip reason must give.
SKIPPED_ON_LOCALSTACK = {
    "tests/e2e/test_pipeline_flow.py::"
    "test_a_failing_record_is_retried_from_its_sequence_number_and_nothing_is_double_counted": (
        "does not implement BisectBatchOnFunctionError"
    ),
    "tests/e2e/test_emulator_dlq_alarm.py::test_poison_record_on_the_stream_makes_the_dlq_depth_alarm_fire": (
        "embedded emulator's evaluator"
    ),
    "tests/e2e/test_concurrent_producers.py::"
    "test_concurrent_producers_with_workers_killed_mid_way_still_apply_each_event_exactly_once": (
        "kills the embedded emulator's function workers"
    ),
    "tests/e2e/test_api_overload.py::"
    "test_producers_get_503_with_retry_after_while_every_ingest_worker_is_busy": (
        "occupies the embedded emulator's ingest workers"
    ),
}


@pytest.mark.parametrize(
    ("target", "embedded_only", "not_on_localstack"),
    [
        (EMBEDDED, False, False),  # the default target runs everything
        (LOCALSTACK, True, True),
        ("endpoint", True, False),  # a `make up` pipeline: the emulator's ESM bisects, but in another process
    ],
)
def test_each_mark_skips_exactly_the_targets_that_lack_what_it_names(
    target: str, embedded_only: bool, not_on_localstack: bool
) -> None:
    for mark, skipped in (("embedded_only", embedded_only), ("not_on_localstack", not_on_localstack)):
        reason = skip_reason([getattr(pytest.mark, mark)("why").mark], target)
        assert reason == (f"STREAMREC_TARGET={target}: why" if skipped else None), mark
    assert skip_reason([pytest.mark.e2e.mark], target) is None


def test_the_localstack_target_skips_what_localstack_cannot_do_with_the_reason(tmp_path: Path) -> None:
    # Given an endpoint file for a LocalStack that is not running (nothing listens on port 9)
    endpoint_file = tmp_path / "endpoint.json"
    nowhere = "http://127.0.0.1:9"
    endpoint_file.write_text(
        json.dumps({"base_url": nowhere, "api_keys": {}, "aws_endpoint": nowhere, "outputs": {}})
    )
    junit = tmp_path / "junit.xml"
    # When those e2e tests run against it, as `make e2e-localstack` runs them
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", "-q", "-m", "e2e"]
        + list(SKIPPED_ON_LOCALSTACK),
        cwd=REPO_ROOT,
        env={
            **_clean_env(),
            "STREAMREC_TARGET": LOCALSTACK,
            "STREAMREC_PROFILE": LOCALSTACK,
            "STREAMREC_ENDPOINT_FILE": str(endpoint_file),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then each is skipped, none failed or errored, and the reason says what LocalStack lacks
    outcomes = _outcomes(junit)
    assert set(outcomes) == set(SKIPPED_ON_LOCALSTACK), outcomes
    for test_id, phrase in SKIPPED_ON_LOCALSTACK.items():
        outcome, message = outcomes[test_id]
        assert outcome == "skipped", (test_id, outcome, message)
        assert message.startswith("STREAMREC_TARGET=localstack: ") and phrase in message, message


def _clean_env() -> dict[str, str]:
    """This environment without pytest's and the suite's own variables (the child is a fresh run)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "STREAMREC_"))}


def _outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """test id -> (passed|skipped|failed|error, message) from a JUnit XML report."""
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        test_id = f"{path}::{case.get('name')}"
        result = next((child for child in case if child.tag in ("skipped", "failure", "error")), None)
        if result is None:
            outcomes[test_id] = ("passed", "")
        else:
            outcome = {"failure": "failed"}.get(result.tag, result.tag)
            outcomes[test_id] = (outcome, result.get("message", ""))
    return outcomes
