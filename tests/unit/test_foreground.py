"""local_emulator/foreground.py: the lines `up` prints and the wait that always stops the pipeline."""

from __future__ import annotations

import argparse
import io
import os
import signal
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from local_emulator import foreground


class _Pipeline:
    """What foreground reads of a LocalPipeline, and whether it was stopped."""

    def __init__(self, workdir: Path) -> None:
        self.timings = {"moto_s": 0.5, "total_s": 9.5}
        self.base_url = "http://127.0.0.1:4510/dev"
        self.api_keys = {"producer": "P-KEY", "reader": "R-KEY"}
        self.moto_endpoint = "http://127.0.0.1:4566"
        self.region = "us-east-1"
        self.workdir = workdir
        self.endpoint_file = workdir / "endpoint.json"
        self.endpoint_file.write_text("{}")
        self.stopped = 0

    def endpoint_document(self) -> dict[str, str]:
        return {"admin_url": "http://127.0.0.1:4510/_local/"}

    def stop(self) -> None:
        self.stopped += 1


def _fake(workdir: Path) -> Any:
    """A stand-in for LocalPipeline (what foreground uses of it)."""
    return _Pipeline(workdir)


def test_the_endpoint_lines_with_a_callers_page_before_the_console(tmp_path: Path):
    out = io.StringIO()
    foreground.print_endpoints(_fake(tmp_path), [("storefront", "http://x/_local/storefront")], out)
    labels = [line[:13].strip() for line in out.getvalue().splitlines()[1:]]
    assert labels == [
        "base URL", "API key", "API key", "local AWS", "storefront", "console", "alarms", "endpoint file",
        "logs", "try:",
    ]  # fmt: skip
    assert "API key       reader    R-KEY" in out.getvalue().splitlines()
    assert f"endpoint file {tmp_path / 'endpoint.json'}" in out.getvalue().splitlines()


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_pipeline_and_removes_the_endpoint_file(tmp_path: Path, number: int):
    pipeline = _Pipeline(tmp_path)
    seen: list[threading.Event] = []
    before = signal.getsignal(number)
    out = io.StringIO()

    def setup(stop: threading.Event) -> None:
        seen.append(stop)
        os.kill(os.getpid(), number)  # as Ctrl-C (SIGINT) or `kill` (SIGTERM) would, during the set-up

    foreground.run_until_stopped(
        cast(Any, pipeline), setup, out
    )  # returns: the signal was caught, not raised
    assert pipeline.stopped == 1 and not pipeline.endpoint_file.exists()
    assert seen[0].is_set()  # what the set-up started in the background can see the pipeline stop
    assert out.getvalue().splitlines() == ["Ctrl-C to stop.", "stopping ..."]
    assert signal.getsignal(number) is before  # the caller's handlers are back


def test_a_failing_set_up_still_stops_the_pipeline(tmp_path: Path):
    pipeline = _Pipeline(tmp_path)

    def setup(stop: threading.Event) -> None:
        raise RuntimeError("no storefront today")

    with pytest.raises(RuntimeError, match="no storefront today"):
        foreground.run_until_stopped(cast(Any, pipeline), setup, io.StringIO())
    assert pipeline.stopped == 1 and not pipeline.endpoint_file.exists()


def test_ctrl_c_while_starting_says_nothing_is_left_running_and_exits_130(monkeypatch: pytest.MonkeyPatch):
    def interrupted(**kwargs: Any) -> None:
        raise KeyboardInterrupt  # what LocalPipeline.start re-raises after stopping what it had started

    monkeypatch.setattr(foreground.LocalPipeline, "start", interrupted)
    parser = argparse.ArgumentParser()
    foreground.add_arguments(parser)
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        foreground.start(parser.parse_args([]), out)
    assert exit_.value.code == 130  # the shell's convention for "ended by SIGINT"
    assert "interrupted while starting: nothing is left running" in out.getvalue()
