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

This module is the request pipeline; each of its parts does one job in its own module: `rest_api` (the
API as deployed, read back from moto), `throttling` (usage plan limits), `proxy` (the Lambda proxy event
and response) and `http_server` (sockets, body framing, refusals that come before any routing).

``/_local/...`` (outside any stage) is the local runtime's own routes (the alarms and pollers as JSON, the
console, the demo's storefront), answered by `admin` without a key: the server listens on 127.0.0.1
only, and these routes refuse any Host header but a loopback one (a page on another site cannot reach
them by DNS rebinding). They are not API traffic: they record no API Gateway metrics. They get the
request's headers, so a route that changes state can require one of its own (the storefront's token).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from local_emulator.http_server import (
    BODY_TIMEOUT_S,
    MAX_PAYLOAD_BYTES,
    READ_TIMEOUT_S,
    Answer,
    HttpServer,
    json_answer,
)
from local_emulator.loopback import is_loopback_host
from local_emulator.proxy import proxy_event, proxy_response
from local_emulator.rest_api import ApiKey, GatewayResponse, Method, RestApiModel, UsagePlan
from local_emulator.throttling import TokenBucket, UsagePlanLimits
from local_emulator.workers import Throttled

# The model's types, importable from here as before the split.
__all__ = [
    "ApiGateway",
    "ApiKey",
    "GatewayResponse",
    "Method",
    "RestApiModel",
    "TokenBucket",
    "UsagePlan",
]

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_local/"
# Invoke(function_name, event, wait_s=...) -> (payload, function_error); raises workers.Throttled.
InvokeByName = Callable[..., tuple[Any, str | None]]
# Admin(verb, path under /_local/, query string, body, headers by lower-cased name) -> the answer.
Admin = Callable[[str, str, str, bytes, Mapping[str, str]], Answer]

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


class ApiGateway:
    """Serves one `RestApiModel` over HTTP (threaded) and invokes functions through `invoke`."""

    def __init__(
        self,
        model: RestApiModel,
        invoke: InvokeByName,
        *,
        port: int = 0,
        admin: Admin | None = None,
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
        self._on_request = on_request
        self._invoke_wait_s = invoke_wait_s
        self._limits = UsagePlanLimits(model.api_id, clock)
        self._server = HttpServer(
            self, port=port, read_timeout_s=read_timeout_s, body_timeout_s=body_timeout_s
        )

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._server.port

    def base_url(self, stage: str) -> str:
        """The invoke URL of a stage, like API Gateway's ``https://<id>.execute-api.../<stage>``."""
        return f"http://127.0.0.1:{self.port}/{stage}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.stop()

    def handle(
        self, verb: str, raw_path: str, headers: list[tuple[str, str]], body: bytes | None, source_ip: str
    ) -> Answer:
        """Handle one HTTP request; returns (status, headers, body).

        `body` None: the request's body was over the payload limit (read and discarded).
        """
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        if urlsplit(raw_path).path.startswith(ADMIN_PREFIX) and self._admin is not None:
            return self._local(verb, raw_path, headers, body or b"")
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
        stage, _, rest = url.path.lstrip("/").partition("/")
        path = "/" + rest
        if stage not in self.model.stages:
            return json_answer({"message": "Forbidden"}, 403)
        found = self.model.match(path, verb)
        if found is None:
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id)
        method, path_params = found
        key: ApiKey | None = None
        if method.api_key_required:
            key = self._authorize(header_map.get("x-api-key"), stage)
            if key is None:
                return self.gateway_response("INVALID_API_KEY", request_id)
            throttled = self._limits.refusal(key, stage, method)
            if throttled is not None:
                return self.gateway_response(throttled, request_id)
        if body is None or len(body) > MAX_PAYLOAD_BYTES:
            return self.gateway_response("REQUEST_TOO_LARGE", request_id)
        if method.integration_type == "MOCK":
            return method.mock_status, list(method.mock_headers.items()), b""
        if method.integration_type != "AWS_PROXY" or not method.function_name:
            log.warning("integration %s of %s %s is not emulated", method.integration_type, verb, path)
            return self.gateway_response("API_CONFIGURATION_ERROR", request_id)
        event = proxy_event(
            self.model,
            method,
            verb,
            path,
            url.query,
            headers,
            body,
            stage,
            path_params,
            key,
            source_ip,
            request_id,
        )
        try:
            payload, function_error = self._invoke(method.function_name, event, wait_s=self._invoke_wait_s)
        except Throttled as throttled_invocation:
            log.info("%s: %s", verb, throttled_invocation)
            return self.gateway_response("INTEGRATION_FAILURE", request_id)
        if function_error is not None:
            log.warning("function %s failed: %s", method.function_name, payload)
            return self.gateway_response("DEFAULT_5XX", request_id)
        response = proxy_response(payload)
        if response is None:
            log.warning("malformed proxy response from %s: %r", method.function_name, payload)
            return self.gateway_response("DEFAULT_5XX", request_id)
        return response

    def _local(self, verb: str, raw_path: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
        """A ``/_local/`` route: loopback Host headers only, then the runtime's own handler."""
        assert self._admin is not None
        url = urlsplit(raw_path)
        hosts = [v for k, v in headers if k.lower() == "host"]
        # RFC 9112 3.2: one Host header; an absolute-form target's authority is the one that counts.
        if len(hosts) != 1 or not is_loopback_host(url.netloc or hosts[0]):
            return json_answer({"message": "local admin routes answer one loopback Host header only"}, 403)
        header_map = {k.lower(): v for k, v in headers}
        return self._admin(verb, url.path[len(ADMIN_PREFIX) :], url.query, body, header_map)

    def gateway_response(self, response_type: str, request_id: str) -> Answer:
        """API Gateway's own answer of `response_type`: the API's customized gateway response of that
        type, else of its DEFAULT_4XX/DEFAULT_5XX family, else API Gateway's default."""
        default_status, message = AWS_DEFAULT_RESPONSES[response_type]
        family = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
        custom = self.model.gateway_responses.get(response_type) or self.model.gateway_responses.get(family)
        if custom is None:
            return json_answer({"message": message}, default_status)
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
