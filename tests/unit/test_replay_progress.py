"""The replay's progress bar: readable in CI logs, one redrawn line on a terminal."""

from __future__ import annotations

import io

from tools.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_in_a_log_it_prints_a_line_per_tenth_and_a_final_line():
    # Given a non-terminal stream and 1,000 units done in steps of 50, one second apart
    out, clock = io.StringIO(), Clock()
    bar = Progress(1000, label="replay", stream=out, clock=clock, interactive=False)
    for _ in range(20):
        clock.now += 1
        bar.update(50, "ok")
    bar.close()
    lines = out.getvalue().splitlines()
    # Then a first line and one per tenth reached (11 in all; closing adds nothing already shown),
    # the last with the totals and the rate
    assert len(lines) == 11
    assert lines[-1] == "replay [" + "#" * 30 + "] 1000/1000 100.0% 50/s ok"


def test_on_a_terminal_it_redraws_one_line_at_most_ten_times_a_second():
    out, clock = io.StringIO(), Clock()
    bar = Progress(100, stream=out, clock=clock, interactive=True)
    bar.update(1)  # drawn
    bar.update(1)  # same instant: skipped
    clock.now = 0.5
    bar.update(1)  # drawn
    bar.close()  # always drawn, then a newline
    text = out.getvalue()
    assert text.count("\r") == 3
    assert text.endswith("\n") and "3/100" in text


def test_without_a_total_it_counts():
    out, clock = io.StringIO(), Clock()
    clock.now = 2
    bar = Progress(None, stream=out, clock=clock, interactive=False)
    clock.now = 4
    bar.update(10)
    bar.close()
    assert out.getvalue() == "10 5/s\n"
