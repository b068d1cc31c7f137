"""The local runtime's own /_local/ routes (Runtime._admin), without a pipeline: verbs and query values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_emulator.console import MAX_MINUTES, MIN_MINUTES
from local_emulator.runtime import Runtime, RuntimeOptions


def _admin(tmp_path: Path, verb: str, path: str, query: str = ""):
    runtime = Runtime("http://127.0.0.1:1", [], RuntimeOptions(workdir=tmp_path))
    status, _, body = runtime._admin(verb, path, query, b"{}", {})
    return status, body


@pytest.mark.parametrize("path", ["alarms", "status", "console", "console.json"])
@pytest.mark.parametrize("verb", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_the_read_routes_refuse_other_verbs_naming_the_route(tmp_path, verb, path):
    """They answered 200 to any verb (a POST to console.json drew the console)."""
    status, body = _admin(tmp_path, verb, path)
    assert status == 405 and f"{verb} is not allowed on /_local/{path}" in json.loads(body)["message"]


@pytest.mark.parametrize("verb", ["GET", "HEAD"])
def test_the_read_routes_answer_get_and_head(tmp_path, verb):
    assert _admin(tmp_path, verb, "status")[0] == 200


@pytest.mark.parametrize("minutes", ["NaN", "inf", "-inf", "-1", "0", "0.5", "361", "1e308", "soon", "0x10"])
def test_a_window_that_is_not_a_number_of_minutes_in_range_is_a_400_naming_the_rule(tmp_path, minutes):
    """NaN, infinities, negatives and 1e308 were drawn silently as 1 or 360 minutes."""
    status, body = _admin(tmp_path, "GET", "console.json", f"minutes={minutes}")
    rule = f"minutes must be a number from {MIN_MINUTES} to {MAX_MINUTES}"
    assert status == 400 and rule in json.loads(body)["message"]


@pytest.mark.parametrize(("minutes", "window_s"), [(str(MIN_MINUTES), 60.0), (str(MAX_MINUTES), 21_600.0)])
def test_both_ends_of_the_window_are_drawn(tmp_path, minutes, window_s):
    status, body = _admin(tmp_path, "GET", "console.json", f"minutes={minutes}")
    assert status == 200 and json.loads(body)["window_s"] == window_s


@pytest.mark.parametrize("period", ["0", "5", "60", "-1", "1.0", "NaN", "dashboards", "10s", "1" * 5000])
def test_a_period_other_than_the_dashboards_or_a_local_one_is_a_400_naming_the_rule(tmp_path, period):
    status, body = _admin(tmp_path, "GET", "console.json", f"period={period}")
    assert (
        status == 400 and "period must be dashboard or one of 1, 10 (seconds)" in json.loads(body)["message"]
    )


@pytest.mark.parametrize(
    ("period", "drawn"), [("dashboard", "dashboard"), ("", "dashboard"), ("1", 1), ("10", 10)]
)
def test_the_dashboards_periods_or_a_local_one_are_drawn(tmp_path, period, drawn):
    status, body = _admin(tmp_path, "GET", "console.json", f"period={period}")
    assert status == 200 and json.loads(body)["period"] == drawn
