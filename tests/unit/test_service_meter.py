"""The moto server's meter of Kinesis and DynamoDB metrics (service_metrics.Meter) and its HTTP route,
read by the runtime each second: nothing lost, nothing counted twice, whoever else reads it."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from local_emulator import moto_http, service_metrics
from local_emulator.metrics import dims
from local_emulator.runtime import Runtime, RuntimeOptions
from local_emulator.service_metrics import MAX_UNACKNOWLEDGED, Meter

DIMS = {"StreamName": "events"}


def _total(datapoints: list[dict]) -> float:
    return sum(point["value"] for point in datapoints)


def test_a_reader_that_does_not_acknowledge_takes_nothing_from_the_runtime():
    """The route drained on every GET: a curl of it (or any second reader) took the runtime's points."""
    meter = Meter(clock=lambda: 100.0)
    meter.add("AWS/Kinesis", "IncomingRecords", DIMS, 3, "Count")
    _, seen_by_curl = meter.read()
    through, seen_by_runtime = meter.read()
    assert _total(seen_by_curl) == _total(seen_by_runtime) == 3
    assert meter.read(acknowledged=through)[1] == []


def test_an_answer_the_runtime_did_not_get_is_read_again_and_then_never_again():
    """A read whose answer was lost (the runtime timed out while moto was slow) lost its points."""
    meter = Meter(clock=lambda: 100.0)
    meter.add("AWS/Kinesis", "IncomingRecords", DIMS, 2, "Count")
    meter.read()  # answered, but the answer never reached the runtime: it acknowledges nothing
    meter.add("AWS/Kinesis", "IncomingRecords", DIMS, 5, "Count")
    through, datapoints = meter.read(acknowledged=0)
    assert _total(datapoints) == 7
    assert meter.read(acknowledged=through) == (through, [])


def test_concurrent_writers_and_two_readers_count_every_unit_exactly_once():
    seconds = iter(range(10**9))
    meter = Meter(clock=lambda: float(next(seconds) // 50))
    writers_done = threading.Event()
    recorded: list[dict] = []

    def write() -> None:
        for _ in range(5_000):
            meter.add("AWS/DynamoDB", "ConsumedWriteCapacityUnits", {"TableName": "t"}, 1, "Count")

    def runtime() -> None:
        through = 0
        while True:
            done = writers_done.is_set()
            through, datapoints = meter.read(acknowledged=through)  # acknowledges the last answer
            recorded.extend(datapoints)
            if done:
                break

    def curl() -> None:
        while not writers_done.is_set():
            meter.read()

    writers = [threading.Thread(target=write) for _ in range(4)]
    readers = [threading.Thread(target=runtime), threading.Thread(target=curl)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    for thread in readers:
        thread.join()
    assert _total(recorded) == 4 * 5_000


def test_batches_nobody_acknowledges_are_bounded_keeping_the_latest():
    seconds = iter(range(10**6))
    meter = Meter(clock=lambda: float(next(seconds)))
    for _ in range(MAX_UNACKNOWLEDGED + 5):
        meter.add("AWS/Kinesis", "IncomingRecords", DIMS, 1, "Count")
        through, datapoints = meter.read()
    assert len(datapoints) == MAX_UNACKNOWLEDGED and datapoints[-1]["timestamp"] == through - 1


def _get(query: str) -> tuple[str, bytes]:
    app = moto_http.local_app(lambda environ, start_response: [])
    started: list[str] = []
    body = b"".join(
        app(
            {"PATH_INFO": service_metrics.ROUTE, "QUERY_STRING": query, "HTTP_HOST": "127.0.0.1:4566"},
            lambda status, headers: started.append(status),
        )
    )
    return started[0], body


@pytest.mark.parametrize(
    "value",
    ["-1", "1.5", "%C2%B2", "%D9%A3", "1" * 19, "1" * 5000],  # "²" and "٣" are str.isdigit()
)
def test_the_route_refuses_an_acknowledgement_that_is_not_a_batch_number(value: str):
    status, body = _get(f"acknowledged={value}")
    assert status.startswith("400") and b"acknowledged must be a batch number" in body


def test_the_route_answers_a_batch_number():
    status, body = _get("acknowledged=0")
    assert status.startswith("200") and set(json.loads(body)) == {"through", "datapoints"}


class _SlowMeterServer(ThreadingHTTPServer):
    """The moto server's meter route, answering each read after a pause (a busy moto server)."""

    def __init__(self, meter: Meter) -> None:
        meter_ = meter

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                time.sleep(0.2)
                _, body = meter_.read_json(urllib.parse.urlsplit(self.path).query)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_the_runtime_records_each_metered_unit_once_when_it_samples_from_several_threads(tmp_path):
    """The monitor samples every second and anything may call Runtime.sample too (the tests do): two
    reads at once would both get the batches neither had acknowledged."""
    meter = Meter()
    server = _SlowMeterServer(meter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runtime = Runtime(
            f"http://127.0.0.1:{server.server_address[1]}", [], RuntimeOptions(workdir=tmp_path)
        )
        meter.add("AWS/Kinesis", "IncomingRecords", DIMS, 5, "Count")
        readers = [threading.Thread(target=runtime._collect_service_metrics) for _ in range(4)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        runtime._collect_service_metrics()  # acknowledges the last answer
    finally:
        server.shutdown()
        server.server_close()
    key = ("AWS/Kinesis", "IncomingRecords", dims(DIMS))
    assert runtime.metrics.statistic(*key, "Sum", 0, 4e9) == 5
