"""bench.serve_routing compares like with like: the Powertools port answers every request kind with the
same status and body as serve's handler (only CORS header details differ, which the benchmark prints)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import serve_routing as bench


def test_the_resolver_port_answers_like_the_handler_but_for_cors_headers() -> None:
    store, users, items = bench.feature_rows(2_000)
    deps = bench.configure(store)
    try:
        variants: dict[str, Callable[..., dict[str, Any]]] = {
            "hand-rolled": bench.serve.handler,
            "powertools": bench.powertools_handler(deps),
        }
        kinds = bench.request_kinds(users, items)
        with bench._quiet():
            found = bench.differences(kinds, variants)
    finally:
        bench.serve.reset()
    assert found, "the port is expected to differ in CORS headers"
    assert all(line.startswith(("access-control-", "vary:")) for line in found), found
