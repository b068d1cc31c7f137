"""The REST API: routes, API keys, usage plans, stage tracing/logging/throttling, CORS from settings."""

from __future__ import annotations

import json
from typing import Any

from streamrec_core import routes
from streamrec_core.http import GATEWAY_ERRORS
from streamrec_core.routes import KeyRole

from stacks.settings import UsagePlanSettings
from tests.infra.conftest import ACCOUNT, REGION, Synth, arn_of, ref

FUNCTION_PREFIX = {routes.INGEST: "IngestFunction", routes.SERVE: "ServeFunction"}
ROUTES = {(r.method, r.path): FUNCTION_PREFIX[r.function] for r in routes.ROUTES}
KEY_PREFIX = {KeyRole.PRODUCER: "ApiRestApiProducerKey", KeyRole.READER: "ApiRestApiReaderKey"}
PLAN_SUFFIX = {KeyRole.PRODUCER: "-producers", KeyRole.READER: "-readers"}
HEALTH = ("GET", routes.HEALTH.path)


def _paths(synth: Synth) -> dict[str, str]:
    """API Gateway resource logical id -> full path, rebuilt from PathPart/ParentId."""
    resources = synth.of_type("AWS::ApiGateway::Resource")
    api_id, _ = synth.one("AWS::ApiGateway::RestApi")

    def path(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = "" if parent == {"Fn::GetAtt": [api_id, "RootResourceId"]} else path(parent["Ref"])
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in resources}


def _methods(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _paths(synth)
    return {
        (m["Properties"]["HttpMethod"], paths[m["Properties"]["ResourceId"]["Ref"]]): m["Properties"]
        for m in synth.of_type("AWS::ApiGateway::Method").values()
    }


def test_every_route_exists_and_proxies_to_its_function(synth: Synth) -> None:
    methods = _methods(synth)
    for route, function_prefix in ROUTES.items():
        integration = methods[route]["Integration"]
        fn_id, _ = synth.one("AWS::Lambda::Function", function_prefix)
        assert integration["Type"] == "AWS_PROXY", route
        assert integration["IntegrationHttpMethod"] == "POST"
        assert arn_of(fn_id) in integration["Uri"]["Fn::Join"][1], route


def test_every_route_but_health_and_preflights_requires_an_api_key(synth: Synth) -> None:
    methods = _methods(synth)
    keyed = {route for route, m in methods.items() if m.get("ApiKeyRequired") is True}
    open_routes = set(methods) - keyed
    assert keyed == set(ROUTES) - {HEALTH}
    assert open_routes == {HEALTH} | {r for r in methods if r[0] == "OPTIONS"}


def test_path_parameters_are_required_and_validated(synth: Synth) -> None:
    methods = _methods(synth)
    validator_id, validator = synth.one("AWS::ApiGateway::RequestValidator")
    assert validator["Properties"]["ValidateRequestParameters"] is True
    for verb, path, name in (
        ("GET", routes.RECOMMENDATIONS.path, "user_id"),
        ("GET", routes.SIMILAR.path, "item_id"),
        ("GET", routes.EXPERIMENT.path, "experiment_id"),
    ):
        method = methods[(verb, path)]
        assert method["RequestParameters"] == {f"method.request.path.{name}": True}
        assert method["RequestValidatorId"] == ref(validator_id)


def test_cors_preflights_exist_exactly_when_origins_are_configured(dev: Synth, prod: Synth) -> None:
    # Given dev allows a browser origin and prod none
    assert dev.settings.api.cors_allowed_origins and not prod.settings.api.cors_allowed_origins
    # Then dev answers preflights on every keyed route, through the route's own function, and prod has none
    dev_methods = _methods(dev)
    preflights = {path for verb, path in dev_methods if verb == "OPTIONS"}
    assert preflights == {path for _, path in ROUTES} - {routes.HEALTH.path}
    for path in preflights:
        [verb] = [r.method for r in routes.ROUTES if r.path == path]
        assert (
            dev_methods[("OPTIONS", path)]["Integration"]["Uri"]
            == dev_methods[(verb, path)]["Integration"]["Uri"]
        )
    assert not [verb for verb, _ in _methods(prod) if verb == "OPTIONS"]


def _plan(synth: Synth, name_suffix: str) -> tuple[str, dict[str, Any]]:
    plans = synth.of_type("AWS::ApiGateway::UsagePlan")
    [(plan_id, plan)] = [
        (k, p["Properties"])
        for k, p in plans.items()
        if p["Properties"]["UsagePlanName"].endswith(name_suffix)
    ]
    return plan_id, plan


def test_two_usage_plans_carry_throttle_and_quota_from_settings(synth: Synth) -> None:
    api_id, _ = synth.one("AWS::ApiGateway::RestApi")
    stage_id, _ = synth.one("AWS::ApiGateway::Stage")
    assert len(synth.of_type("AWS::ApiGateway::UsagePlan")) == 2
    plan_settings: dict[str, UsagePlanSettings] = {
        "-producers": synth.settings.api.producers,
        "-readers": synth.settings.api.readers,
    }
    for suffix, expected in plan_settings.items():
        _, plan = _plan(synth, suffix)
        assert plan["Throttle"] == {"RateLimit": expected.rate_limit, "BurstLimit": expected.burst_limit}
        assert plan["Quota"] == {"Limit": expected.quota_limit, "Period": expected.quota_period}
        assert plan["ApiStages"][0]["ApiId"] == ref(api_id)
        assert plan["ApiStages"][0]["Stage"] == ref(stage_id)


def test_each_plan_has_its_own_api_key(synth: Synth) -> None:
    keys = synth.of_type("AWS::ApiGateway::ApiKey")
    assert len(keys) == 2
    plan_of_key = {
        k["Properties"]["KeyId"]["Ref"]: k["Properties"]["UsagePlanId"]["Ref"]
        for k in synth.of_type("AWS::ApiGateway::UsagePlanKey").values()
    }
    assert set(plan_of_key) == set(keys)
    for role in KeyRole:
        key_id, _ = synth.one("AWS::ApiGateway::ApiKey", KEY_PREFIX[role])
        assert plan_of_key[key_id] == _plan(synth, PLAN_SUFFIX[role])[0], role


def test_each_function_is_told_the_one_key_id_its_routes_accept(synth: Synth) -> None:
    """API Gateway opens every keyed method to any key of the stage; the functions check the key id."""
    for name, prefix in FUNCTION_PREFIX.items():
        env = synth.props("AWS::Lambda::Function", prefix)["Environment"]["Variables"]
        roles = {r.key_role for r in routes.routes_of(name) if r.key_role is not None}
        for role in KeyRole:
            variable = routes.KEY_ID_ENV[role]
            if role in roles:
                key_id, _ = synth.one("AWS::ApiGateway::ApiKey", KEY_PREFIX[role])
                assert env[variable] == ref(key_id), (name, role)
            else:
                assert variable not in env, (name, role)
    # the producer key (public) opens only ingest, the reader key only serve
    assert routes.key_roles_of(routes.INGEST) == (KeyRole.PRODUCER,)
    assert routes.key_roles_of(routes.SERVE) == (KeyRole.READER,)


def test_keys_attach_to_the_stage_through_their_plans_only(synth: Synth) -> None:
    # Stage keys would make each key depend on the stage, hence on the methods and the functions whose
    # environment refers to the key: a dependency cycle. Plans open the stage to their keys.
    for key in synth.every("AWS::ApiGateway::ApiKey", *KEY_PREFIX.values()).values():
        assert "StageKeys" not in key["Properties"]
    for role in KeyRole:
        _, plan = _plan(synth, PLAN_SUFFIX[role])
        assert plan["ApiStages"][0]["Stage"] == ref(synth.one("AWS::ApiGateway::Stage")[0])


def test_stage_is_traced_access_logged_and_throttled_from_settings(synth: Synth) -> None:
    stage = synth.props("AWS::ApiGateway::Stage")
    api = synth.settings.api
    log_group_id, _ = synth.one("AWS::Logs::LogGroup", "ApiAccessLogs")
    assert stage["StageName"] == api.stage_name
    assert stage["TracingEnabled"] is True
    # The log group's ARN without the trailing ":*" of its Arn attribute: API Gateway stores it so, and
    # drift detection compares the two (flag @aws-cdk/aws-apigateway:logGroupDestinationArnWithoutWildcard).
    log_group_arn = {"Fn::Join": ["", [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:", ref(log_group_id)]]}
    assert stage["AccessLogSetting"]["DestinationArn"] == log_group_arn
    [settings] = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == api.stage_rate_limit
    assert settings["ThrottlingBurstLimit"] == api.stage_burst_limit
    # Payloads may hold personal data: never logged by API Gateway.
    assert settings["DataTraceEnabled"] is False


def test_gateway_answers_use_the_shared_error_shape_and_overload_says_when_to_retry(synth: Synth) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) == set(GATEWAY_ERRORS)
    for response_type, response in responses.items():
        body = json.loads(response["ResponseTemplates"]["application/json"])
        assert body["error"]["code"] == GATEWAY_ERRORS[response_type].code
        assert body["error"]["request_id"] == "$context.requestId"
    # A throttled function (Lambda at its concurrency) is DESIGN's overload answer: 503 with Retry-After;
    # so is the usage plan's throttle a 429 with Retry-After.
    assert responses["INTEGRATION_FAILURE"]["StatusCode"] == "503"
    for response_type, response in responses.items():
        retry_after = response.get("ResponseParameters", {}).get("gatewayresponse.header.Retry-After")
        assert retry_after == ("'1'" if response_type in ("INTEGRATION_FAILURE", "THROTTLED") else None)
    # A status on DEFAULT_5XX would replace the status of every other 5xx (502, 504...)
    assert "StatusCode" not in responses["DEFAULT_5XX"]


def test_gateway_answers_are_readable_by_a_page_on_the_one_allowed_origin(synth: Synth) -> None:
    """A page can only back off from a 429 (or show a 403) it may read: API Gateway's own answers carry
    the CORS headers of the profile's allowed origin (dev: one), and none where no origin is allowed."""
    origins = synth.settings.api.cors_allowed_origins
    for response in synth.of_type("AWS::ApiGateway::GatewayResponse").values():
        headers = {
            name.removeprefix("gatewayresponse.header."): value
            for name, value in response["Properties"].get("ResponseParameters", {}).items()
        }
        if origins:
            assert len(origins) == 1, "a gateway response can name one origin (or '*')"
            assert headers["Access-Control-Allow-Origin"] == f"'{origins[0]}'"
            assert "Retry-After" in headers["Access-Control-Expose-Headers"]
        else:
            assert not [name for name in headers if name.startswith("Access-Control-")]
