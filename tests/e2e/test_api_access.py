"""Who may call what, over HTTP on the running pipeline: each API key only opens its own routes, and
browsers on configured origins (and no others) may call every keyed route, read routes included."""

from __future__ import annotations

import os
import time

import pytest
from streamrec_core import routes
from streamrec_core.constants import OUTPUT_ITEMS_TABLE, OUTPUT_USERS_TABLE
from streamrec_core.features.dynamodb import DynamoStore
from streamrec_core.features.keys import user_key

from local_emulator.pipeline import REPO_ROOT
from stacks.settings import load_profiles_from_cdk_json
from tests.e2e.conftest import PROFILE_ENV
from tools.replay import format_timestamp

PROFILE = os.environ.get(PROFILE_ENV, "dev")
ALLOWED_ORIGINS = load_profiles_from_cdk_json(str(REPO_ROOT / "cdk.json"))[PROFILE].api.cors_allowed_origins
OTHER_ORIGIN = "https://evil.example"


def _view(user_id: str) -> dict:
    return {
        "event_id": f"{user_id}-1",
        "event_type": "view",
        "user_id": user_id,
        "item_id": f"item-{user_id}",
        "timestamp": format_timestamp(time.time() - 5),
    }


def _read_paths(unique_id: str) -> dict[str, str]:
    return {
        routes.RECOMMENDATIONS.path: f"/v1/users/{unique_id}/recommendations",
        routes.SIMILAR.path: f"/v1/items/{unique_id}/similar",
        routes.EXPERIMENT.path: f"/v1/experiments/{unique_id}",
    }


def test_the_reader_key_cannot_send_events(local_pipeline, unique_id):
    # Given a valid event sent with the reader key (a key API Gateway accepts on this stage)
    answer = local_pipeline.post_events([_view(unique_id)], key="reader")
    # Then it is refused in the shared error shape, and nothing reaches the feature tables
    assert answer.status == 403
    error = answer.json()["error"]
    assert error["code"] == "forbidden" and "producer" in error["message"] and error["request_id"]
    local_pipeline.wait_until_idle()
    store = DynamoStore(
        local_pipeline.client("dynamodb"),
        local_pipeline.outputs[OUTPUT_USERS_TABLE],
        local_pipeline.outputs[OUTPUT_ITEMS_TABLE],
        writers=1,
    )
    assert store.get_many([user_key(unique_id)], consistent=True)[user_key(unique_id)] is None
    # while the producer key sends the very same event
    assert local_pipeline.post_events([_view(unique_id)], key="producer").status == 200


@pytest.mark.parametrize("route", [r.path for r in routes.ROUTES if r.key_role is routes.KeyRole.READER])
def test_the_producer_key_cannot_read(local_pipeline, unique_id, route):
    # Given the producer key, which lives in web pages and is therefore public
    path = _read_paths(unique_id)[route]
    # When it asks a read route, Then it gets 403 in the shared shape and no recommendation data
    answer = local_pipeline.request("GET", path, key="producer")
    assert answer.status == 403
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == "forbidden"
    assert "reader" in body["error"]["message"]
    # while the reader key is let through to the function (which answers 200 or 404 for unknown ids)
    assert local_pipeline.request("GET", path, key="reader").status in (200, 404)


def test_health_needs_no_key(local_pipeline):
    assert local_pipeline.health().status == 200


KEYED = [r for r in routes.ROUTES if r.key_role is not None]


@pytest.mark.parametrize("route", KEYED, ids=lambda r: f"{r.method} {r.path}")
def test_browsers_on_configured_origins_may_call_every_keyed_route(local_pipeline, unique_id, route):
    path = "/v1/events" if route is routes.EVENTS else _read_paths(unique_id)[route.path]
    asked = {
        "Access-Control-Request-Method": route.method,
        "Access-Control-Request-Headers": "content-type,x-api-key",
    }
    # Given the origin the profile allows (dev: the local front end), a preflight is answered for it
    allowed = local_pipeline.request("OPTIONS", path, headers={"Origin": ALLOWED_ORIGINS[0], **asked})
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGINS[0]
    assert route.method in allowed.headers["Access-Control-Allow-Methods"]
    assert {"content-type", "x-api-key"} <= {
        h.strip().lower() for h in allowed.headers["Access-Control-Allow-Headers"].split(",")
    }
    # and any other origin gets no CORS headers, so its browser refuses the answer
    refused = local_pipeline.request("OPTIONS", path, headers={"Origin": OTHER_ORIGIN, **asked})
    assert refused.status == 204
    assert not [h for h in refused.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize(
    ("case", "key", "path"),
    [
        ("no key", None, routes.EVENTS.path),
        ("unknown key", "k" * 40, routes.EVENTS.path),
        ("no such route", "producer", "/v1/nothing-here"),
    ],
)
def test_api_gateways_own_refusals_come_in_the_shared_shape_readable_by_allowed_pages(
    local_pipeline, case, key, path
):
    # Given a page on the allowed origin whose request API Gateway refuses before any function runs
    answer = local_pipeline.request("POST", path, key=key, body={}, headers={"Origin": ALLOWED_ORIGINS[0]})
    # Then the answer is the deployed gateway response: the shared error shape with API Gateway's
    # request id, and CORS headers that let the page read it
    assert answer.status == 403, case
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == "forbidden"
    assert body["error"]["request_id"] == answer.headers["x-amzn-RequestId"]
    assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGINS[0]
    assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]
