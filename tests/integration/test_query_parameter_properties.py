"""No client input gives a 5xx: every query and path parameter of every route, with hostile values.

A 5xx pages on-call (the api-5xx alarm); client mistakes must be 4xx with the shared error shape naming
the parameter. Serve runs against moto (a parameter that reaches DynamoDB as part of a key must not
break the request there either); ingest against the fake stream (it takes no query parameters, and
must ignore or refuse them without failing).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest import handler as ingest_handler
from moto import mock_aws
from serve import handler as serve_handler
from streamrec_core import constants as c
from streamrec_core import routes
from streamrec_core.experiments import Experiment, Variant, experiments_json

from local_emulator.worker_main import LambdaContext
from tests.feature_kit import ITEMS_TABLE, USERS_TABLE, create_tables
from tests.unit.ingest_fakes import FakeKinesis, ingest_config, proxy_event

READER_KEY_ID = "reader-key-id"
SERVE_ENV = {
    c.ENV_READER_API_KEY_ID: READER_KEY_ID,
    c.ENV_USERS_TABLE: USERS_TABLE,
    c.ENV_ITEMS_TABLE: ITEMS_TABLE,
    c.ENV_EXPERIMENTS: experiments_json([Experiment("ranking", (Variant("a", 1.0), Variant("b", 1.0)))]),
}
# Values the hostile run used, and their neighbours: other scripts' digits (pass str.isdigit()),
# numbers too long for int(), signs, spaces, exponents, bounds on both sides.
NUMBERISH = [
    "\u00b2",  # superscript two
    "\u0663",  # Arabic-Indic three
    "\uff11\uff10",  # fullwidth 10
    "\U0001d7d7",  # mathematical bold 9
    "1" * 5000,
    "0" * 4301,
    "-1",
    "+5",
    " 5",
    "5 ",
    "1e2",
    "0x10",
    "NaN",
    "",
    "0",
    "1",
    "100",
    "101",
    "0100",
]
# Any code point, lone surrogates included (they reach a handler as JSON escapes).
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)
HOSTILE = st.one_of(
    st.sampled_from(NUMBERISH),
    ANY_TEXT,
    st.text(alphabet="abc,.:@-_ ", max_size=400),
    st.text(alphabet="x", min_size=120, max_size=6000),
    st.lists(st.sampled_from(["i1", "i2", "bad id", ""]), max_size=150).map(",".join),
)
QUERY = st.dictionaries(
    st.sampled_from(["k", "category", "exclude", "unknown", "K", "k[]"]) | ANY_TEXT,
    st.lists(HOSTILE, min_size=1, max_size=3),
    max_size=4,
)
# Every serve route of the route table, with its path parameter (None: the route has none).
SERVE_ROUTES = [
    (route.path, route.path_parameters[0] if route.path_parameters else None)
    for route in routes.ROUTES
    if route.function == routes.SERVE
]
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def serve() -> Iterator[None]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb)
        serve_handler.configure(serve_handler.ServeConfig.from_env(SERVE_ENV), dynamodb)
        yield
        serve_handler.reset()


@pytest.fixture
def ingest() -> Iterator[None]:
    ingest_handler.configure(ingest_config(), FakeKinesis(), sleep=lambda s: None)
    yield
    ingest_handler.reset()


def proxy_get(resource: str, path_value: str | None, name: str | None, query: dict[str, list[str]]) -> dict:
    """An API Gateway REST proxy GET event; the last value of a repeated parameter is the single one."""
    path = resource if name is None else resource.replace("{" + name + "}", path_value or "")
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {"x-api-key": "k"},
        "multiValueHeaders": {"x-api-key": ["k"]},
        "queryStringParameters": {key: values[-1] for key, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {name: path_value} if name is not None else None,
        "requestContext": {
            "requestId": "req-1",
            "stage": "v1",
            "identity": {"apiKey": "k", "apiKeyId": READER_KEY_ID},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def assert_client_error_or_success(response: dict) -> dict:
    status = response["statusCode"]
    body = json.loads(response["body"])
    assert status < 500, body
    if status >= 400:
        assert body["error"]["code"] and body["error"]["message"], body
    return body


@pytest.mark.parametrize(("resource", "name"), SERVE_ROUTES)
@PROPERTY_SETTINGS
@given(path_value=HOSTILE, query=QUERY)
def test_no_query_or_path_parameter_value_gives_a_5xx(serve, resource, name, path_value, query) -> None:
    response = serve_handler.handler(proxy_get(resource, path_value, name, query), LambdaContext("serve"))
    assert_client_error_or_success(response)


@PROPERTY_SETTINGS
@given(value=HOSTILE)
def test_k_is_ascii_decimal_within_bounds_or_a_400_naming_k(serve, value) -> None:
    query = {"k": [value]}
    response = serve_handler.handler(
        proxy_get("/v1/users/{user_id}/recommendations", "u1", "user_id", query), LambdaContext("serve")
    )
    body = assert_client_error_or_success(response)
    valid = value == "" or (
        value.isascii() and value.isdecimal() and len(value) <= 3 and 1 <= int(value) <= 100
    )
    if valid:
        assert response["statusCode"] == 200
    else:
        assert response["statusCode"] == 400
        assert body["error"]["details"][0]["field"] == "k"


def test_an_experiment_id_longer_than_events_may_carry_is_a_400_not_a_404(serve) -> None:
    response = serve_handler.handler(
        proxy_get("/v1/experiments/{experiment_id}", "e" * 65, "experiment_id", {}), LambdaContext("serve")
    )
    body = json.loads(response["body"])
    assert response["statusCode"] == 400
    assert body["error"]["details"][0]["field"] == "experiment_id"


@PROPERTY_SETTINGS
@given(query=QUERY)
def test_ingest_answers_hostile_query_parameters_without_a_5xx(ingest, query) -> None:
    event = proxy_event(
        {"event_type": "view", "user_id": "u1", "item_id": "i1"},
        queryStringParameters={key: values[-1] for key, values in query.items()} or None,
        multiValueQueryStringParameters=query or None,
    )
    assert_client_error_or_success(ingest_handler.handler(event, LambdaContext("ingest")))
