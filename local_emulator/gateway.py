"""A local REST API gateway serving a deployed API Gateway REST API over HTTP on 127.0.0.1.

Everything comes from what was deployed into moto (`RestApiModel.load`): resources, methods with their
``apiKeyRequired`` flag and Lambda proxy integrations, stages, API keys, usage plans and gateway
responses. Requests are handled as API Gateway does:

- URL ``/<stage>/<path>``: an unknown stage gets 403 ``{"message":"Forbidden"}``; a path or method no
  resource defines gets the MISSING_AUTHENTICATION_TOKEN response (403).
- API keys (``x-api-key`` header) on methods that require them: a missing, unknown or disabled key, or a
  key in no usage plan of this API stage, gets the INVALID_API_KEY response (403). The proxy event names
  the accepted key in ``requestContext.identity.apiKey`` / ``apiKeyId`` (null on keyless methods).
- Usage plans: per-key token bucket at the plan's rate and burst (and per-method overrides) -> THROTTLED
  (429); quota per period -> QUOTA_EXCEEDED (429).
- Payloads above 10 MB get REQUEST_TOO_LARGE (413).
- Lambda proxy integration (AWS_PROXY): the event is API Gateway's REST proxy event (version 1.0); the
  function's ``{statusCode, headers, multiValueHeaders, body, isBase64Encoded}`` becomes the response. A
  function error or a malformed response gets DEFAULT_5XX (502). A function with no free worker within
  ``invoke_wait_s`` is a throttled invocation: INTEGRATION_FAILURE (AWS's default is a bare 5xx; the
  streamrec stack customizes it to 503 with Retry-After).
- Each of those answers is the API's deployed gateway response of that type (or of DEFAULT_4XX /
  DEFAULT_5XX), else API Gateway's default ``{"message": ...}``.
- MOCK integrations (CORS preflight) answer with their integration response's header mappings.

The HTTP side never resets or hangs a connection it accepted: a deep listen backlog, bodies framed by a
strict Content-Length or by chunked transfer coding (decoded, as API Gateway does, and the header
dropped), 400 for any other framing, 408 when a body does not arrive within ``body_timeout_s``, idle
keep-alive connections closed after ``read_timeout_s``, and a lingering close after a refusal so that the
client reads the answer instead of a reset.

``GET /_local/alarms`` and ``/_local/status`` (outside any stage) return the locally evaluated alarms and
the pollers' progress as JSON, without a key: the server listens on 127.0.0.1 only, and these routes
refuse any Host header but a loopback one (a page on another site cannot reach them by DNS rebinding).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local_emulator import aws
from local_emulator.workers import Throttled

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
ADMIN_PREFIX = "/_local/"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Connections a burst may open before the accept loop takes them (Linux caps it at net.core.somaxconn,
# 4096 by default): with the old default of 5, a burst of 50 clients saw resets.
LISTEN_BACKLOG = 1024
# Seconds a connection may stay silent between requests or between reads of one; and the most a whole
# request body may take to arrive (a client promising more bytes than it sends gets 408, then the close).
READ_TIMEOUT_S = 30.0
BODY_TIMEOUT_S = 30.0
# After a refusal that leaves body bytes unread, how long and how much to keep reading before closing:
# closing a socket with unread input makes the kernel send a reset, and the client never sees the answer.
LINGER_S = 1.0
LINGER_MAX_BYTES = 1 << 20
MAX_CHUNK_LINE = 1024
MAX_TRAILERS = 64
# Invoke(function_name, event, wait_s=...) -> (payload, function_error); raises workers.Throttled.
InvokeByName = Callable[..., tuple[Any, str | None]]
Answer = tuple[int, list[tuple[str, str]], bytes]


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


# API Gateway's own answers when the API customizes none: (status, {"message": ...}). DEFAULT_5XX stands
# for a function error or a malformed proxy response (502).
AWS_DEFAULT_RESPONSES: dict[str, tuple[int, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "THROTTLED": (429, "Too Many Requests"),
    "QUOTA_EXCEEDED": (429, "Limit Exceeded"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "INTEGRATION_FAILURE": (504, "Internal server error"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error"),
    "DEFAULT_5XX": (502, "Internal server error"),
}

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
        chosen = responses.get("204") or responses.get("200") or next(iter(responses.values()), {})
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


class TokenBucket:
    """API Gateway's throttling model: `burst` tokens, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.capacity = float(burst)
        self.tokens = float(burst)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one token; False when the request must be throttled."""
        with self._lock:
            now = self._clock()
            self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
            self._last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class _Quota:
    def __init__(self, limit: int, period_s: float, clock: Callable[[], float]) -> None:
        self.limit, self.period_s, self._clock = limit, period_s, clock
        self.start, self.used = clock(), 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            if now - self.start >= self.period_s:
                self.start, self.used = now, 0
            if self.used >= self.limit:
                return False
            self.used += 1
            return True


class ApiGateway:
    """Serves one `RestApiModel` over HTTP (threaded) and invokes functions through `invoke`."""

    def __init__(
        self,
        model: RestApiModel,
        invoke: InvokeByName,
        *,
        port: int = 0,
        admin: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_request: Callable[[str, int, float], None] | None = None,
        invoke_wait_s: float | None = None,
        read_timeout_s: float = READ_TIMEOUT_S,
        body_timeout_s: float = BODY_TIMEOUT_S,
    ) -> None:
        """`invoke_wait_s`: how long a request waits for a free worker of its function (None: forever)."""
        self.model = model
        self._invoke = invoke
        self._admin = admin
        self._clock = clock
        self._on_request = on_request
        self._invoke_wait_s = invoke_wait_s
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._quotas: dict[tuple[str, str], _Quota] = {}
        self._limits_lock = threading.Lock()
        gateway = self

        class Handler(_RequestHandler):
            owner = gateway
            timeout = read_timeout_s
            body_timeout = body_timeout_s

        self._server = _Server(("127.0.0.1", port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self._server.server_address[1])

    def base_url(self, stage: str) -> str:
        """The invoke URL of a stage, like API Gateway's ``https://<id>.execute-api.../<stage>``."""
        return f"http://127.0.0.1:{self.port}/{stage}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-gateway", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:  # shutdown() would wait forever for a loop that never ran
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    # --- request pipeline -----------------------------------------------------------------------
    def handle(
        self, verb: str, raw_path: str, headers: list[tuple[str, str]], body: bytes | None, source_ip: str
    ) -> Answer:
        """Handle one HTTP request; returns (status, headers, body).

        `body` None: the request's body was over the payload limit (read and discarded).
        """
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        status, out_headers, out_body = self._handle(verb, raw_path, headers, body, source_ip, request_id)
        out_headers = [*out_headers, ("x-amzn-RequestId", request_id)]
        if self._on_request is not None:
            self._on_request(raw_path, status, (time.perf_counter() - started) * 1000.0)
        return status, out_headers, out_body

    def _handle(
        self,
        verb: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        source_ip: str,
        request_id: str,
    ) -> Answer:
        url = urlsplit(raw_path)
        header_map = {k.lower(): v for k, v in headers}
        if url.path.startswith(ADMIN_PREFIX) and self._admin is not None:
            if not _is_loopback_host(header_map.get("host")):
                return _json(403, {"message": "local admin routes answer loopback Host headers only"})
            return _json(200, self._admin(url.path[len(ADMIN_PREFIX) :]))
        stage, _, rest = url.path.lstrip("/").partition("/")
        path = "/" + rest
        if stage not in self.model.stages:
            return _json(403, {"message": "Forbidden"})
        found = self.model.match(path, verb)
        if found is None:
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id)
        method, path_params = found
        key: ApiKey | None = None
        if method.api_key_required:
            key = self._authorize(header_map.get("x-api-key"), stage)
            if key is None:
                return self.gateway_response("INVALID_API_KEY", request_id)
            throttled = self._throttle(key, stage, method)
            if throttled is not None:
                return self.gateway_response(throttled, request_id)
        if body is None or len(body) > MAX_PAYLOAD_BYTES:
            return self.gateway_response("REQUEST_TOO_LARGE", request_id)
        if method.integration_type == "MOCK":
            return method.mock_status, list(method.mock_headers.items()), b""
        if method.integration_type != "AWS_PROXY" or not method.function_name:
            log.warning("integration %s of %s %s is not emulated", method.integration_type, verb, path)
            return self.gateway_response("API_CONFIGURATION_ERROR", request_id)
        event = self._event(
            method, verb, path, url.query, headers, body, stage, path_params, key, source_ip, request_id
        )
        try:
            payload, function_error = self._invoke(method.function_name, event, wait_s=self._invoke_wait_s)
        except Throttled as throttled_invocation:
            log.info("%s: %s", verb, throttled_invocation)
            return self.gateway_response("INTEGRATION_FAILURE", request_id)
        if function_error is not None:
            log.warning("function %s failed: %s", method.function_name, payload)
            return self.gateway_response("DEFAULT_5XX", request_id)
        response = _proxy_response(payload)
        if response is None:
            log.warning("malformed proxy response from %s: %r", method.function_name, payload)
            return self.gateway_response("DEFAULT_5XX", request_id)
        return response

    def gateway_response(self, response_type: str, request_id: str) -> Answer:
        """API Gateway's own answer of `response_type`: the API's customized gateway response of that
        type, else of its DEFAULT_4XX/DEFAULT_5XX family, else API Gateway's default."""
        default_status, message = AWS_DEFAULT_RESPONSES[response_type]
        family = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
        custom = self.model.gateway_responses.get(response_type) or self.model.gateway_responses.get(family)
        if custom is None:
            return _json(default_status, {"message": message})
        template = custom.templates.get("application/json")
        if template is None:
            template = next(iter(custom.templates.values()), None)
        if template is None:
            body = json.dumps({"message": message})
        else:
            body = (
                template.replace("$context.requestId", request_id)
                .replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.message", message)
            )
        headers = [("Content-Type", "application/json"), *custom.headers.items()]
        return custom.status or default_status, headers, body.encode("utf-8")

    def _authorize(self, value: str | None, stage: str) -> ApiKey | None:
        if not value:
            return None
        key = self.model.keys_by_value.get(value)
        if key is None or not key.enabled:
            return None
        if not any((self.model.api_id, stage) in plan.stages for plan in key.plans):
            return None
        return key

    def _throttle(self, key: ApiKey, stage: str, method: Method) -> str | None:
        """The gateway response type refusing the request (THROTTLED, QUOTA_EXCEEDED), or None."""
        for plan in key.plans:
            if (self.model.api_id, stage) not in plan.stages:
                continue
            method_path = f"{method.resource_path}/{method.http_method}"
            rate, burst = plan.method_throttles.get((self.model.api_id, method_path), (plan.rate, plan.burst))
            if rate is not None and burst is not None:
                bucket_key = (
                    plan.plan_id,
                    key.key_id,
                    method_path if (self.model.api_id, method_path) in plan.method_throttles else "",
                )
                if not self._bucket(bucket_key, rate, burst).take():
                    return "THROTTLED"
            if plan.quota_limit is not None and plan.quota_period_s is not None:
                if not self._quota(plan, key).take():
                    return "QUOTA_EXCEEDED"
            return None
        return None

    def _bucket(self, key: tuple[str, ...], rate: float, burst: int) -> TokenBucket:
        with self._limits_lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(rate, burst, self._clock)
            return bucket

    def _quota(self, plan: UsagePlan, key: ApiKey) -> _Quota:
        with self._limits_lock:
            quota = self._quotas.get((plan.plan_id, key.key_id))
            if quota is None:
                assert plan.quota_limit is not None and plan.quota_period_s is not None
                quota = self._quotas[(plan.plan_id, key.key_id)] = _Quota(
                    plan.quota_limit, plan.quota_period_s, self._clock
                )
            return quota

    def _event(
        self,
        method: Method,
        verb: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        stage: str,
        path_params: dict[str, str],
        key: ApiKey | None,
        source_ip: str,
        request_id: str,
    ) -> dict[str, Any]:
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in [*headers, ("X-Forwarded-For", source_ip), ("X-Forwarded-Proto", "http")]:
            single[name] = value
            multi.setdefault(name, []).append(value)
        query_single: dict[str, str] = {}
        query_multi: dict[str, list[str]] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            query_single[name] = value
            query_multi.setdefault(name, []).append(value)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        text, is_base64 = _body(body, content_type, self.model.binary_media_types)
        now = _dt.datetime.now(_dt.UTC)
        return {
            "resource": method.resource_path,
            "path": path,
            "httpMethod": verb,
            "headers": single or None,
            "multiValueHeaders": multi or None,
            "queryStringParameters": query_single or None,
            "multiValueQueryStringParameters": query_multi or None,
            "pathParameters": path_params or None,
            "stageVariables": self.model.stages.get(stage) or None,
            "requestContext": {
                "resourceId": method.resource_id,
                "resourcePath": method.resource_path,
                "httpMethod": verb,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{stage}{path}",
                "accountId": aws.ACCOUNT_ID,
                "protocol": "HTTP/1.1",
                "stage": stage,
                "domainPrefix": self.model.api_id,
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": single.get("User-Agent") or single.get("user-agent"),
                    "user": None,
                    "apiKey": key.value if key else None,
                    "apiKeyId": key.key_id if key else None,
                },
                "domainName": f"{self.model.api_id}.execute-api.{aws.REGION}.amazonaws.com",
                "apiId": self.model.api_id,
            },
            "body": text,
            "isBase64Encoded": is_base64,
        }


def _body(body: bytes, content_type: str, binary_types: list[str]) -> tuple[str | None, bool]:
    if not body:
        return None, False
    binary = any(_media_matches(content_type, pattern) for pattern in binary_types)
    if not binary:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def _media_matches(content_type: str, pattern: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    pattern = pattern.replace("~1", "/").lower()
    if pattern == "*/*":
        return True
    if pattern.endswith("/*"):
        return media.startswith(pattern[:-1])
    return media == pattern


def _proxy_response(payload: Any) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """Map a Lambda proxy response to (status, headers, body); None when it is malformed."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if not isinstance(payload, dict):
        return None
    status = payload.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return None
    headers: list[tuple[str, str]] = []
    single = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return None
    for name, values in multi.items():
        if not isinstance(values, list):
            return None
        headers.extend((name, str(v)) for v in values)
    multi_names = {n.lower() for n in multi}
    headers.extend((name, str(v)) for name, v in single.items() if name.lower() not in multi_names)
    body = payload.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        return None
    elif payload.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        raw = body.encode("utf-8")
    return status, headers, raw


def _json(status: int, document: Any) -> Answer:
    return status, [("Content-Type", "application/json")], json.dumps(document).encode("utf-8")


def _is_loopback_host(host: str | None) -> bool:
    """True for a Host header naming this machine's loopback (with any port)."""
    if not host:
        return False
    host = host.strip().lower()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else ""
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in LOOPBACK_HOSTS


class _Server(ThreadingHTTPServer):
    """One thread per connection, a deep accept queue, and threads that never block shutdown."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


class _Refused(Exception):
    """A request the HTTP layer answers itself (bad framing, body too slow) before any routing."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _RequestHandler(BaseHTTPRequestHandler):
    owner: ApiGateway
    protocol_version = "HTTP/1.1"
    server_version = "streamrec-local-apigateway"
    timeout: float = READ_TIMEOUT_S  # socket timeout: idle keep-alive and each read
    body_timeout: float = BODY_TIMEOUT_S
    _linger = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.client_address[0], *args)

    def _serve(self) -> None:
        try:
            try:
                body = self._read_body(time.monotonic() + self.body_timeout)
            except TimeoutError:  # the client stalled mid-body (promised more bytes than it sends)
                self._refuse(_Refused(408, f"request body not received within {self.body_timeout:g} s"))
                return
            except _Refused as refusal:
                self._refuse(refusal)
                return
            except ConnectionError:
                self.close_connection = True  # the client closed mid-body: nobody to answer
                return
            # API Gateway drops the hop-by-hop framing header; the function sees the decoded body.
            headers = [(k, v) for k, v in self.headers.items() if k.lower() != "transfer-encoding"]
            try:
                status, out_headers, out_body = self.owner.handle(
                    self.command, self.path, headers, body, self.client_address[0]
                )
            except Exception:  # the gateway must answer, whatever happened behind it
                log.exception("gateway failure on %s %s", self.command, self.path)
                status, out_headers, out_body = _json(500, {"message": "Internal server error"})
            self._reply(status, out_headers, out_body)
        finally:
            self.connection.settimeout(self.timeout)

    # --- body framing -------------------------------------------------------------------------------
    def _read_body(self, deadline: float) -> bytes | None:
        """The request body (b"" when none); None when it was over MAX_PAYLOAD_BYTES (read, discarded).

        Raises _Refused for framing API Gateway would not accept, TimeoutError past the deadline.
        """
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings:
            if lengths:  # RFC 9112 6.3: both together is how requests get smuggled; refuse
                raise _Refused(400, "Content-Length and Transfer-Encoding must not both be sent")
            codings = [part.strip().lower() for value in encodings for part in value.split(",")]
            if codings != ["chunked"]:
                raise _Refused(400, f"unsupported Transfer-Encoding {', '.join(codings)!r}: use chunked")
            return self._read_chunked(deadline)
        if not lengths:
            return b""
        values = {value.strip() for value in lengths}
        text = values.pop()
        if values or not re.fullmatch(r"[0-9]{1,19}", text):
            raise _Refused(400, "Content-Length must be one non-negative integer")
        length = int(text)
        if length > MAX_PAYLOAD_BYTES:
            self._read_exact(length, deadline, keep=False)
            return None
        return self._read_exact(length, deadline)

    def _read_chunked(self, deadline: float) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self._read_line(deadline)
            size_text = line.split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
                raise _Refused(400, "malformed chunked body: bad chunk size line")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            keep = total <= MAX_PAYLOAD_BYTES
            data = self._read_exact(size, deadline, keep=keep)
            if keep:
                parts.append(data)
            if self._read_exact(2, deadline) != b"\r\n":
                raise _Refused(400, "malformed chunked body: chunk not followed by CRLF")
        for _ in range(MAX_TRAILERS):  # trailer fields, ignored, up to the empty line
            if self._read_line(deadline) in (b"\r\n", b"\n"):
                return b"".join(parts) if total <= MAX_PAYLOAD_BYTES else None
        raise _Refused(400, "malformed chunked body: too many trailer fields")

    def _read_line(self, deadline: float) -> bytes:
        self._set_deadline(deadline)
        line = self.rfile.readline(MAX_CHUNK_LINE + 1)
        if not line:
            raise ConnectionError("client closed the connection mid-body")
        if len(line) > MAX_CHUNK_LINE or not line.endswith(b"\n"):
            raise _Refused(400, "malformed chunked body: line too long or cut")
        return line

    def _read_exact(self, length: int, deadline: float, *, keep: bool = True) -> bytes:
        """Read exactly `length` bytes (kept, or discarded in pieces); the deadline bounds the whole."""
        parts: list[bytes] = []
        remaining = length
        while remaining > 0:
            self._set_deadline(deadline)
            piece = self.rfile.read1(min(remaining, 1 << 16))
            if not piece:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(piece)
            if keep:
                parts.append(piece)
        return b"".join(parts)

    def _set_deadline(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Refused(408, f"request body not received within {self.body_timeout:g} s")
        self.connection.settimeout(min(remaining, self.timeout))

    # --- answering ----------------------------------------------------------------------------------
    def _refuse(self, refusal: _Refused) -> None:
        """Answer a framing problem and close: what follows on this connection cannot be trusted."""
        self.close_connection = self._linger = True
        self._reply(refusal.status, [("Content-Type", "application/json")], _message(str(refusal)))

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def finish(self) -> None:
        super().finish()
        if not self._linger:
            return
        # Lingering close: stop writing, then read what the client still sends (a body we refused to
        # read) until it closes, so the kernel does not answer it with a reset that destroys our reply.
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_S)
            drained = 0
            while drained < LINGER_MAX_BYTES:
                piece = self.connection.recv(1 << 16)
                if not piece:
                    break
                drained += len(piece)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


def _message(text: str) -> bytes:
    return json.dumps({"message": text}).encode("utf-8")
