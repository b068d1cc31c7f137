"""serve.handler.handler against moto: features written by the process handler (user rows) and the
aggregate handlers (co-visitation, trending lists, experiment counters), read back as the API does."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import boto3
import pytest
from aggregate import handler as aggregate_handler
from aggregate.config import AggregateConfig
from moto import mock_aws
from process import handler as process_handler
from process.config import ProcessConfig
from serve import handler as serve_handler
from streamrec_core import constants as c
from streamrec_core.env import ConfigError
from streamrec_core.features.config import FeatureConfig

from local_emulator.worker_main import LambdaContext
from tests.feature_kit import (
    ITEMS_TABLE,
    USERS_TABLE,
    FaultyDynamoDB,
    aggregate_env,
    create_tables,
    event,
    kinesis_event,
    kinesis_record,
    process_env,
)

EXPERIMENTS = [
    {
        "id": "ranking",
        "variants": [
            {"name": "control", "weight": 1, "params": {}},
            {"name": "recent-heavy", "weight": 1, "params": {"seen_weight": 3}},
        ],
    }
]
READER_KEY_ID = "r9d8e7"
PRODUCER_KEY_ID = "a1b2c3"
SHOP = "https://shop.example"
SERVE_ENV = {
    c.ENV_USERS_TABLE: USERS_TABLE,
    c.ENV_ITEMS_TABLE: ITEMS_TABLE,
    c.ENV_EXPERIMENTS: json.dumps(EXPERIMENTS),
    c.ENV_READER_API_KEY_ID: READER_KEY_ID,
    c.ENV_CORS_ALLOWED_ORIGINS: SHOP,
}


def api_event(
    path: str,
    *,
    resource: str | None = None,
    params: dict | None = None,
    query: dict | None = None,
    method: str = "GET",
    key_id: str | None = READER_KEY_ID,
    headers: dict | None = None,
) -> dict:
    """An API Gateway REST proxy event (the fields serve reads), sent with the reader key by default."""
    headers = {"x-api-key": "k", **(headers or {})} if key_id else dict(headers or {})
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": params,
        "requestContext": {
            "requestId": "api-req-1",
            "stage": "v1",
            "identity": {"apiKey": "k" if key_id else None, "apiKeyId": key_id},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def recommendations_event(user: str, *, key_id: str | None = READER_KEY_ID, **query) -> dict:
    return api_event(
        f"/v1/users/{user}/recommendations",
        resource="/v1/users/{user_id}/recommendations",
        params={"user_id": user},
        query={k: str(v) for k, v in query.items()} or None,
        key_id=key_id,
    )


def ts(second: int) -> str:
    return f"2024-05-01T12:{second // 60:02d}:{second % 60:02d}.000Z"


# Control's shoppers: three impressions and one click attributed to the "ranking" experiment.
ATTRIBUTED = [("erin", "impression", None), ("erin", "impression", None), ("erin", "click", "toy-2")]
ATTRIBUTED += [("frank", "impression", None)]


def stream_records() -> list[dict]:
    """The records of one shard: four shopping sessions, then control's attributed events."""
    sessions = {
        "alice": [("book-1", "view"), ("book-2", "view"), ("book-3", "add_to_cart")],
        "bob": [("book-1", "view"), ("book-2", "view"), ("toy-1", "view")],
        "carol": [("book-2", "view"), ("book-3", "purchase"), ("book-4", "view")],
        "dave": [("toy-1", "view"), ("toy-2", "view")],
    }
    records, n = [], 0
    for user, steps in sessions.items():
        for item, kind in steps:
            n += 1
            category = item.split("-")[0]
            records.append(
                kinesis_record(event(n, user=user, item=item, etype=kind, ts=ts(n), category=category), n)
            )
    for user, kind, shown in ATTRIBUTED:
        n += 1
        attribution = {"request_id": f"r{n}", "variant": "control", "experiment_id": "ranking"}
        body = event(n, user=user, item=shown, etype=kind, ts=ts(n), category=None, attribution=attribution)
        records.append(kinesis_record(body, n))
    return records


def attributed(records: list[dict]) -> list[dict]:
    """What the experiments mapping's filter criteria let through: records carrying `attribution`."""
    return [r for r in records if "attribution" in json.loads(base64.b64decode(r["kinesis"]["data"]))]


@pytest.fixture
def api():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        create_tables(dynamodb)
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        features = FeatureConfig(
            user_ttl_seconds=86_400, item_ttl_seconds=86_400, allowed_lateness_ms=3_600_000
        )
        process_handler.configure(ProcessConfig.from_env(process_env(features, dlq)), dynamodb, sqs)
        aggregate_handler.configure(
            AggregateConfig.from_env(aggregate_env(features)), dynamodb, sleep=lambda s: None
        )
        records = stream_records()
        done: dict[str, list[Any]] = {"batchItemFailures": []}
        # The hot path first; then the two aggregate mappings of the same stream.
        assert process_handler.handler(kinesis_event(records), LambdaContext("process")) == done
        assert aggregate_handler.items(kinesis_event(records), LambdaContext("items")) == done
        assert (
            aggregate_handler.experiments(kinesis_event(attributed(records)), LambdaContext("experiments"))
            == done
        )
        spy = FaultyDynamoDB(dynamodb)
        serve_handler.configure(serve_handler.ServeConfig.from_env(SERVE_ENV), spy)
        yield spy
        serve_handler.reset()
        aggregate_handler.reset()
        process_handler.reset()


def call(event: dict) -> tuple[int, dict]:
    response = serve_handler.handler(event, LambdaContext("serve"))
    return response["statusCode"], json.loads(response["body"])


def test_recommendations_use_two_batch_get_round_trips_and_rank_covisited_items(api):
    status, body = call(recommendations_event("alice", k=5))
    assert status == 200
    assert api.batch_get_calls == 2 and api.query_calls == 0
    assert body["model"] == c.MODEL_NAME and body["experiment_id"] == "ranking"
    assert body["variant"] in {"control", "recent-heavy"} and body["request_id"] == "api-req-1"
    items = [i["item_id"] for i in body["items"]]
    assert "book-4" in items  # co-visited with book-2 / book-3 by carol
    assert body["items"][0]["reason"] == "covisit" and not body["fallback"]


def test_cold_start_user_gets_trending_in_one_round_trip(api):
    status, body = call(recommendations_event("stranger", k=3))
    assert status == 200 and body["fallback"]
    assert [i["reason"] for i in body["items"]] == ["trending"] * 3
    assert body["items"][0]["item_id"] == "book-3"  # carted and bought: the heaviest weighted interest
    assert api.batch_get_calls == 1


def test_category_and_exclude_parameters(api):
    event = recommendations_event("bob", k=10, category="toy")
    event["multiValueQueryStringParameters"]["exclude"] = ["toy-2"]
    status, body = call(event)
    assert status == 200
    assert {i["item_id"] for i in body["items"]} <= {"toy-1"}


def test_exclude_is_at_most_100_item_ids_and_an_empty_one_is_not_an_id(api):
    def status_of(exclude: list[str]) -> tuple[int, dict]:
        event = recommendations_event("bob", k=10)
        event["multiValueQueryStringParameters"]["exclude"] = exclude
        return call(event)

    assert status_of([",".join(f"i{n}" for n in range(100))])[0] == 200
    for refused in ([",".join(f"i{n}" for n in range(101))], [","] * 101, [""], ["i1,,i2"], ["i1", ""]):
        status, body = status_of(refused)
        assert status == 400 and "exclude" in body["error"]["message"], refused


def test_similar_items_take_one_read(api):
    status, body = call(
        api_event(
            "/v1/items/book-2/similar",
            resource="/v1/items/{item_id}/similar",
            params={"item_id": "book-2"},
            query={"k": "2"},
        )
    )
    assert status == 200 and len(body["items"]) == 2
    assert api.batch_get_calls == 1 and api.query_calls == 0
    status, body = call(
        api_event(
            "/v1/items/none/similar", resource="/v1/items/{item_id}/similar", params={"item_id": "none"}
        )
    )
    assert (
        status == 404 and body["error"]["code"] == "not_found" and body["error"]["request_id"] == "api-req-1"
    )


def test_experiment_results_count_what_the_experiments_branch_applied(api):
    status, body = call(
        api_event(
            "/v1/experiments/ranking",
            resource="/v1/experiments/{experiment_id}",
            params={"experiment_id": "ranking"},
        )
    )
    assert status == 200 and api.query_calls == 1 and api.batch_get_calls == 0
    control, recent_heavy = body["variants"]
    assert [control["variant"], recent_heavy["variant"]] == ["control", "recent-heavy"]
    assert (control["impressions"], control["clicks"], control["purchases"]) == (3, 1, 0)
    assert control["ctr"]["value"] == pytest.approx(1 / 3)
    assert recent_heavy["impressions"] == 0
    assert recent_heavy["ctr"] == {"value": None, "low": None, "high": None}


def test_health_needs_no_key_and_no_table_reads(api):
    status, body = call(api_event("/v1/health", key_id=None))
    assert status == 200 and body == {"status": "ok", "model": c.MODEL_NAME}
    assert api.batch_get_calls == api.query_calls == 0


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (recommendations_event("alice", k=0), 400, "bad_request"),
        (recommendations_event("bad user"), 400, "bad_request"),
        (api_event("/v1/nothing"), 404, "not_found"),
        (recommendations_event("alice", limit=3), 400, "bad_request"),
        (api_event("/v1/health", query={"verbose": "1"}), 400, "bad_request"),
        (api_event("/v1/health", method="POST"), 405, "method_not_allowed"),
    ],
)
def test_errors_use_the_shared_shape(api, event, status, code):
    got_status, body = call(event)
    assert got_status == status and body["error"]["code"] == code and body["error"]["message"]


READ_ROUTES = {
    "recommendations": ("/v1/users/alice/recommendations", "/v1/users/{user_id}/recommendations", "user_id"),
    "similar": ("/v1/items/book-2/similar", "/v1/items/{item_id}/similar", "item_id"),
    "experiment": ("/v1/experiments/ranking", "/v1/experiments/{experiment_id}", "experiment_id"),
}


def read_event(route: str, **kwargs) -> dict:
    path, resource, name = READ_ROUTES[route]
    return api_event(path, resource=resource, params={name: path.split("/")[3]}, **kwargs)


@pytest.mark.parametrize("route", sorted(READ_ROUTES))
@pytest.mark.parametrize("key_id", [PRODUCER_KEY_ID, None], ids=["producer-key", "no-key"])
def test_read_routes_need_the_reader_key_and_any_other_gets_403(api, route, key_id):
    # Given a read with the public producer key (which API Gateway accepts: a key of the stage) or none
    status, body = call(read_event(route, key_id=key_id))
    # Then it is refused in the shared shape, naming the key needed, before any table is read
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert "reader" in body["error"]["message"] and body["error"]["request_id"] == "api-req-1"
    assert api.batch_get_calls == api.query_calls == 0


@pytest.mark.parametrize("route", sorted(READ_ROUTES))
def test_preflight_of_a_read_route_is_answered_for_configured_origins_only(api, route):
    # Given a browser on a configured origin asking to GET with the x-api-key header (no key on preflights)
    preflight = read_event(
        route,
        method="OPTIONS",
        key_id=None,
        headers={"Origin": SHOP, "Access-Control-Request-Method": "GET"},
    )
    allowed = serve_handler.handler(preflight, LambdaContext("serve"))
    # Then it may, from that origin only
    assert allowed["statusCode"] == 204
    assert allowed["headers"]["Access-Control-Allow-Origin"] == SHOP
    assert "GET" in allowed["headers"]["Access-Control-Allow-Methods"]
    assert "x-api-key" in allowed["headers"]["Access-Control-Allow-Headers"].lower()
    preflight["headers"]["Origin"] = "https://evil.example"
    refused = serve_handler.handler(preflight, LambdaContext("serve"))
    assert refused["statusCode"] == 204
    assert not any(h.lower().startswith("access-control-") for h in refused["headers"])
    assert api.batch_get_calls == api.query_calls == 0


def test_throttled_reads_become_503_with_retry_after(api):
    class Throttling(FaultyDynamoDB):
        def batch_get_item(self, **kwargs):
            from tests.feature_kit import client_error

            raise client_error("ProvisionedThroughputExceededException", "BatchGetItem")

    serve_handler.configure(serve_handler.ServeConfig.from_env(SERVE_ENV), Throttling(api._client))
    event = recommendations_event("alice")
    event["headers"]["Origin"] = SHOP
    response = serve_handler.handler(event, LambdaContext("serve"))
    assert response["statusCode"] == 503 and response["headers"]["Retry-After"] == "1"
    # a page's script may read it (CORS exposes only safelisted headers unless told)
    assert "Retry-After" in response["headers"]["Access-Control-Expose-Headers"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: "[{]", "Expecting property name"),
        # the rules settings checks at synth (streamrec_core.experiments), held again at cold start
        (lambda e: e[0]["variants"].pop() and e, r"experiments\[0\]\.variants needs at least two"),
        (
            lambda e: e[0]["variants"][1]["params"].update(seen_wieght=3) or e,
            r"experiments\[0\]\.variants\[1\]\.params has unknown model parameter\(s\) seen_wieght",
        ),
        (lambda e: e[0]["variants"][0].pop("weight") and e, r"variants\[0\]\.weight is required"),
    ],
)
def test_bad_experiments_setting_fails_the_cold_start_naming_the_entry(mutate, message):
    raw = mutate(copy.deepcopy(EXPERIMENTS))
    value = raw if isinstance(raw, str) else json.dumps(raw)
    with pytest.raises(ConfigError, match=rf"{c.ENV_EXPERIMENTS} is invalid: .*{message}"):
        serve_handler.ServeConfig.from_env({**SERVE_ENV, c.ENV_EXPERIMENTS: value})
