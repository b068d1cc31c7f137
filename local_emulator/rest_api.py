"""A deployed API Gateway REST API as the local gateway serves it, read back from moto.

`RestApiModel.load` reads what the template deployed: resources and their methods (``apiKeyRequired``,
the Lambda proxy or MOCK integration), stages, API keys with the usage plans they belong to, and the
gateway responses the API customizes. `RestApiModel.match` picks the method for a request path as API
Gateway does (a literal segment beats a ``{parameter}``, which beats a ``{proxy+}``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

log = logging.getLogger(__name__)


@dataclass
class Method:
    """One method of one resource, as deployed."""

    resource_id: str
    resource_path: str
    http_method: str
    api_key_required: bool
    integration_type: str
    function_name: str | None
    mock_headers: dict[str, str] = field(default_factory=dict)
    mock_status: int = 200


@dataclass
class UsagePlan:
    """A usage plan's limits and the API stages it covers."""

    plan_id: str
    stages: set[tuple[str, str]]
    rate: float | None
    burst: int | None
    method_throttles: dict[tuple[str, str], tuple[float | None, int | None]]  # (api, "/path/METHOD")
    quota_limit: int | None
    quota_period_s: float | None


@dataclass
class ApiKey:
    """An API key and the usage plans it belongs to."""

    key_id: str
    value: str
    name: str
    enabled: bool
    plans: list[UsagePlan] = field(default_factory=list)


@dataclass
class GatewayResponse:
    """A gateway response the API customizes: status (None: the type's own), static headers, templates."""

    status: int | None
    headers: dict[str, str]
    templates: dict[str, str]


_QUOTA_PERIODS = {"DAY": 86_400.0, "WEEK": 7 * 86_400.0, "MONTH": 30 * 86_400.0}


@dataclass
class RestApiModel:
    """One REST API as deployed: its methods by resource path, its stages, and the keys that apply."""

    api_id: str
    name: str
    stages: dict[str, dict[str, str]]
    methods: dict[str, dict[str, Method]]  # resource path -> http method (or ANY) -> method
    keys_by_value: dict[str, ApiKey]
    binary_media_types: list[str]
    gateway_responses: dict[str, GatewayResponse] = field(default_factory=dict)  # by response type

    @classmethod
    def load(cls, apigateway: Any, api_id: str) -> RestApiModel:
        """Read an API, its resources, stages, keys and usage plans from API Gateway (moto)."""
        api = apigateway.get_rest_api(restApiId=api_id)
        methods: dict[str, dict[str, Method]] = {}
        paginator = apigateway.get_paginator("get_resources")
        for page in paginator.paginate(restApiId=api_id, embed=["methods"]):
            for resource in page["items"]:
                for verb, method in (resource.get("resourceMethods") or {}).items():
                    methods.setdefault(resource["path"], {})[verb] = _method(resource, verb, method)
        stages = {
            s["stageName"]: dict(s.get("variables") or {})
            for s in apigateway.get_stages(restApiId=api_id).get("item", [])
        }
        plans = [_plan(p) for p in _all_items(apigateway, "get_usage_plans")]
        keys: dict[str, ApiKey] = {}
        for item in _all_items(apigateway, "get_api_keys", includeValues=True):
            keys[item["id"]] = ApiKey(
                item["id"], item["value"], item.get("name", ""), bool(item.get("enabled"))
            )
        for plan in plans:
            for plan_key in _all_items(apigateway, "get_usage_plan_keys", usagePlanId=plan.plan_id):
                if plan_key["id"] in keys:
                    keys[plan_key["id"]].plans.append(plan)
        return cls(
            api_id=api_id,
            name=api.get("name", ""),
            stages=stages,
            methods=methods,
            keys_by_value={k.value: k for k in keys.values()},
            binary_media_types=list(api.get("binaryMediaTypes") or []),
            gateway_responses=_gateway_responses(apigateway, api_id),
        )

    def match(self, path: str, verb: str) -> tuple[Method, dict[str, str]] | None:
        """The method serving `verb` on `path`, with its path parameters (most specific match wins)."""
        segments = [s for s in path.split("/") if s]
        best: tuple[tuple[int, ...], Method, dict[str, str]] | None = None
        for template, verbs in self.methods.items():
            method = verbs.get(verb) or verbs.get("ANY")
            if method is None:
                continue
            matched = _match_template(template, segments)
            if matched is None:
                continue
            rank, params = matched
            if best is None or rank > best[0]:
                best = (rank, method, params)
        return None if best is None else (best[1], best[2])


def _all_items(apigateway: Any, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    position = None
    while True:
        args = dict(kwargs, limit=500)
        if position:
            args["position"] = position
        page = getattr(apigateway, operation)(**args)
        items.extend(page.get("items", []))
        position = page.get("position")
        if not position:
            return items


def _gateway_responses(apigateway: Any, api_id: str) -> dict[str, GatewayResponse]:
    found: dict[str, GatewayResponse] = {}
    for item in apigateway.get_gateway_responses(restApiId=api_id).get("items", []):
        if item.get("defaultResponse"):
            continue
        headers = {}
        for target, source in (item.get("responseParameters") or {}).items():
            static = str(source)
            if (
                target.startswith("gatewayresponse.header.")
                and static.startswith("'")
                and static.endswith("'")
            ):
                headers[target.split(".", 2)[2]] = static[1:-1]
            else:
                log.warning("gateway response %s: mapping %s is not emulated", item["responseType"], target)
        status = item.get("statusCode")
        found[item["responseType"]] = GatewayResponse(
            int(status) if status else None, headers, dict(item.get("responseTemplates") or {})
        )
    return found


def _method(resource: dict[str, Any], verb: str, method: dict[str, Any]) -> Method:
    integration = method.get("methodIntegration") or {}
    kind = integration.get("type", "")
    function_name = None
    uri = integration.get("uri") or ""
    found = re.search(r"functions/(arn:[^/]+)/invocations", uri)
    if found:
        # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
        function_name = found.group(1).split(":")[6]
    mock_headers: dict[str, str] = {}
    mock_status = 200
    if kind == "MOCK":
        responses = integration.get("integrationResponses") or {}
        chosen: dict[str, Any] = (
            responses.get("204") or responses.get("200") or next(iter(responses.values()), {})
        )
        mock_status = int(chosen.get("statusCode", 200))
        for target, source in (chosen.get("responseParameters") or {}).items():
            if target.startswith("method.response.header."):
                mock_headers[target.rsplit(".", 1)[1]] = str(source).strip("'")
    return Method(
        resource_id=resource["id"],
        resource_path=resource["path"],
        http_method=verb,
        api_key_required=bool(method.get("apiKeyRequired")),
        integration_type=kind,
        function_name=function_name,
        mock_headers=mock_headers,
        mock_status=mock_status,
    )


def _plan(item: dict[str, Any]) -> UsagePlan:
    throttle = item.get("throttle") or {}
    quota = item.get("quota") or {}
    stages: set[tuple[str, str]] = set()
    method_throttles: dict[tuple[str, str], tuple[float | None, int | None]] = {}
    for stage in item.get("apiStages") or []:
        stages.add((stage["apiId"], stage["stage"]))
        for path, limits in (stage.get("throttle") or {}).items():
            method_throttles[(stage["apiId"], path)] = (limits.get("rateLimit"), limits.get("burstLimit"))
    return UsagePlan(
        plan_id=item["id"],
        stages=stages,
        rate=throttle.get("rateLimit"),
        burst=throttle.get("burstLimit"),
        method_throttles=method_throttles,
        quota_limit=quota.get("limit"),
        quota_period_s=_QUOTA_PERIODS.get(quota.get("period", "")),
    )


def _match_template(template: str, segments: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
    parts = [p for p in template.split("/") if p]
    params: dict[str, str] = {}
    rank: list[int] = []
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            if index >= len(segments):
                return None
            params[part[1:-2]] = "/".join(segments[index:])
            rank.append(0)
            return tuple(rank), params
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = unquote(segments[index])
            rank.append(1)
        elif part == segments[index]:
            rank.append(2)
        else:
            return None
    if len(parts) != len(segments):
        return None
    return tuple(rank), params
