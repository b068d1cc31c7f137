"""API Gateway (REST, Lambda proxy) requests and responses, and the one JSON error shape.

Every error the API returns, from any function (and from the gateway itself where it can be templated),
has this shape:

    {"error": {"code": "payload_too_large", "message": "body is 2000000 bytes; the limit is 1048576",
               "request_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
               "details": [...]}}                       # details: optional list of objects

`code` is a stable snake_case token from the ERROR_* names below (clients branch on it); `message` is
for people; `request_id` is API Gateway's request id (also the correlation id in our logs).
Status codes are chosen with these codes in one place: `STATUS_BY_CODE`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Annotated, Any, Final, Literal, NamedTuple, TypeAlias

import msgspec

JSON_CONTENT_TYPE: Final = "application/json"

# --- Error codes (stable API) -------------------------------------------------------------------------
ERROR_MALFORMED_JSON: Final = "malformed_json"
ERROR_UNSUPPORTED_MEDIA_TYPE: Final = "unsupported_media_type"
ERROR_PAYLOAD_TOO_LARGE: Final = "payload_too_large"
ERROR_TOO_MANY_EVENTS: Final = "too_many_events"
ERROR_EMPTY_BATCH: Final = "empty_batch"
ERROR_INVALID_ENVELOPE: Final = "invalid_envelope"
ERROR_VALIDATION_FAILED: Final = "validation_failed"
ERROR_BAD_REQUEST: Final = "bad_request"
ERROR_UNAUTHORIZED: Final = "unauthorized"
ERROR_FORBIDDEN: Final = "forbidden"
ERROR_NOT_FOUND: Final = "not_found"
ERROR_METHOD_NOT_ALLOWED: Final = "method_not_allowed"
ERROR_THROTTLED: Final = "throttled"
ERROR_STREAM_UNAVAILABLE: Final = "stream_unavailable"
ERROR_SERVICE_UNAVAILABLE: Final = "service_unavailable"
ERROR_INTERNAL: Final = "internal_error"

STATUS_BY_CODE: Final[Mapping[str, int]] = {
    ERROR_MALFORMED_JSON: HTTPStatus.BAD_REQUEST,
    ERROR_EMPTY_BATCH: HTTPStatus.BAD_REQUEST,
    ERROR_INVALID_ENVELOPE: HTTPStatus.BAD_REQUEST,
    ERROR_VALIDATION_FAILED: HTTPStatus.BAD_REQUEST,
    ERROR_BAD_REQUEST: HTTPStatus.BAD_REQUEST,
    ERROR_UNAUTHORIZED: HTTPStatus.UNAUTHORIZED,
    ERROR_FORBIDDEN: HTTPStatus.FORBIDDEN,
    ERROR_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ERROR_METHOD_NOT_ALLOWED: HTTPStatus.METHOD_NOT_ALLOWED,
    ERROR_PAYLOAD_TOO_LARGE: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    ERROR_TOO_MANY_EVENTS: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    ERROR_UNSUPPORTED_MEDIA_TYPE: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    ERROR_THROTTLED: HTTPStatus.TOO_MANY_REQUESTS,
    ERROR_INTERNAL: HTTPStatus.INTERNAL_SERVER_ERROR,
    ERROR_STREAM_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    ERROR_SERVICE_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
}


# The codes as a type: the error shape's schema in the OpenAPI document lists exactly these (msgspec reads
# the Literal at run time; mypy cannot build one from a computed tuple, so the alias is Any to it).
ErrorCode: TypeAlias = Literal[tuple(sorted(STATUS_BY_CODE))]  # type: ignore[valid-type]


class ErrorDetail(msgspec.Struct):
    code: Annotated[ErrorCode, msgspec.Meta(description="Stable token to branch on.")]
    message: Annotated[str, msgspec.Meta(description="For people.")]
    request_id: Annotated[str | None, msgspec.Meta(description="API Gateway request id.")]
    details: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET


class Error(msgspec.Struct):
    """The one error shape of every route (and of API Gateway's own errors)."""

    error: ErrorDetail


class GatewayError(NamedTuple):
    """An answer API Gateway gives itself (gateway response), rendered in the shared shape."""

    status: int | None  # None: each response type of the family keeps its own status (DEFAULT_5XX)
    code: str
    message: str
    retry_after: bool = False  # adds Retry-After: RETRY_AFTER_SECONDS


# API Gateway's own answers (route or key missing, over the usage plan, function at capacity, ...) in the
# shared shape; the CDK API construct installs these as gateway responses, and the local emulator reads
# them back from the deployed API and renders them alike. Keys are API Gateway ResponseType names.
GATEWAY_ERRORS: Final[Mapping[str, GatewayError]] = {
    "MISSING_AUTHENTICATION_TOKEN": GatewayError(
        HTTPStatus.FORBIDDEN, ERROR_FORBIDDEN, "missing or unknown route"
    ),
    "INVALID_API_KEY": GatewayError(
        HTTPStatus.FORBIDDEN, ERROR_FORBIDDEN, "a valid x-api-key header is required"
    ),
    "ACCESS_DENIED": GatewayError(HTTPStatus.FORBIDDEN, ERROR_FORBIDDEN, "access denied"),
    "THROTTLED": GatewayError(
        HTTPStatus.TOO_MANY_REQUESTS, ERROR_THROTTLED, "too many requests; retry later", retry_after=True
    ),
    "QUOTA_EXCEEDED": GatewayError(
        HTTPStatus.TOO_MANY_REQUESTS, ERROR_THROTTLED, "usage plan quota exceeded"
    ),
    "REQUEST_TOO_LARGE": GatewayError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, ERROR_PAYLOAD_TOO_LARGE, "request too large"
    ),
    "BAD_REQUEST_BODY": GatewayError(HTTPStatus.BAD_REQUEST, ERROR_BAD_REQUEST, "invalid request body"),
    # Lambda throttled the invocation (the function is at its concurrency): API Gateway's default is a bare
    # 5xx; DESIGN answers overload with 503 and Retry-After, so clients back off instead of giving up.
    "INTEGRATION_FAILURE": GatewayError(
        HTTPStatus.SERVICE_UNAVAILABLE,
        ERROR_SERVICE_UNAVAILABLE,
        "the service is at capacity; retry after Retry-After seconds",
        retry_after=True,
    ),
    # No status: setting one here would change the status of every other 5xx gateway response.
    "DEFAULT_5XX": GatewayError(None, ERROR_INTERNAL, "internal error"),
}


class HttpError(Exception):
    """A request the function answers with an error: raised in logic, rendered by `error_response`."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS_BY_CODE[code]
        self.details = details
        self.headers = dict(headers or {})


def error_body(
    code: str, message: str, *, request_id: str | None = None, details: list[dict[str, Any]] | None = None
) -> Error:
    """The one error shape: {"error": {"code", "message", "request_id", "details"?}}."""
    return Error(ErrorDetail(code, message, request_id, msgspec.UNSET if details is None else details))


def gateway_response(
    response_type: str, allowed_origins: Iterable[str] = ()
) -> tuple[int | None, str, dict[str, str]]:
    """(status, API Gateway mapping template, static headers) rendering a gateway error in the shared
    shape; `$context.requestId` is API Gateway's request id. The headers include the CORS headers of
    `gateway_cors_headers(allowed_origins)`."""
    error = GATEWAY_ERRORS[response_type]
    template = encode_json(error_body(error.code, error.message, request_id="REQUEST_ID"))
    headers = gateway_cors_headers(allowed_origins)
    if error.retry_after:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return error.status, template.replace('"REQUEST_ID"', '"$context.requestId"'), headers


def encode_json(body: Any) -> str:
    """Compact UTF-8 JSON of a response body (msgspec Structs, dicts, lists)."""
    try:
        return msgspec.json.encode(body).decode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate echoed from the request: JSON's \u escape keeps it
        return json.dumps(msgspec.to_builtins(body), separators=(",", ":"))


def json_response(status: int, body: Any, *, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Lambda proxy integration response with a compact JSON body (a msgspec Struct, dict or list)."""
    all_headers = {"Content-Type": JSON_CONTENT_TYPE}
    if headers:
        all_headers.update(headers)
    return {
        "statusCode": int(status),
        "headers": all_headers,
        "body": encode_json(body),
        "isBase64Encoded": False,
    }


def error_response(
    code: str,
    message: str,
    *,
    request_id: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A proxy response carrying the shared error shape; the status follows from `code`."""
    return json_response(
        STATUS_BY_CODE[code],
        error_body(code, message, request_id=request_id, details=details),
        headers=headers,
    )


def http_error_response(
    error: HttpError, *, request_id: str | None = None, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    merged = dict(headers or {})
    merged.update(error.headers)
    return error_response(
        error.code, error.message, request_id=request_id, details=error.details, headers=merged
    )


# --- Reading the proxy event --------------------------------------------------------------------------
def header(event: Mapping[str, Any], name: str) -> str | None:
    """A request header, case-insensitively (API Gateway keeps the client's spelling)."""
    wanted = name.lower()
    headers = event.get("headers") or {}
    for key, value in headers.items():
        if key.lower() == wanted:
            return value if isinstance(value, str) else None
    multi = event.get("multiValueHeaders") or {}
    for key, values in multi.items():
        if key.lower() == wanted and values:
            first = values[0]
            return first if isinstance(first, str) else None
    return None


def request_id(event: Mapping[str, Any]) -> str | None:
    """API Gateway's request id (requestContext.requestId), our correlation id."""
    context = event.get("requestContext") or {}
    value = context.get("requestId") if isinstance(context, Mapping) else None
    return value if isinstance(value, str) else None


def query_parameter(event: Mapping[str, Any], name: str) -> str | None:
    params = event.get("queryStringParameters") or {}
    value = params.get(name) if isinstance(params, Mapping) else None
    return value if isinstance(value, str) else None


def query_parameter_list(event: Mapping[str, Any], name: str) -> list[str]:
    """All values of a repeated query parameter (`?exclude=a&exclude=b`), also comma-separated ones.

    Empty parts are kept (`exclude=` is one empty value): the caller's rule refuses them, and counts them.
    """
    multi = event.get("multiValueQueryStringParameters") or {}
    values = multi.get(name) if isinstance(multi, Mapping) else None
    if not values:
        single = query_parameter(event, name)
        values = [single] if single is not None else []
    return [part for value in values if isinstance(value, str) for part in value.split(",")]


def body_bytes(event: Mapping[str, Any]) -> bytes:
    """The raw request body (base64-decoded when API Gateway flagged it); b"" when absent."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise HttpError(ERROR_BAD_REQUEST, "request body must be text")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(
                ERROR_BAD_REQUEST, "request body is flagged base64 but is not valid base64"
            ) from None
    return body.encode("utf-8", errors="surrogatepass")


def media_type_is_json(content_type: str | None) -> bool:
    """True for `application/json`, optionally with `charset=utf-8` (any case)."""
    if not content_type:
        return False
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() != JSON_CONTENT_TYPE:
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


# Request headers a browser may send cross-origin (the API key travels in a header).
CORS_ALLOW_HEADERS: Final = "Content-Type, X-Api-Key"
# Response headers a page's script may read besides the CORS-safelisted ones: without this, fetch()
# sees no Retry-After on a 503 and cannot wait as told.
CORS_EXPOSE_HEADERS: Final = "Retry-After"
CORS_MAX_AGE_SECONDS: Final = 3600


def cors_headers(origin: str | None, allowed_origins: Iterable[str]) -> dict[str, str]:
    """CORS headers for an allowed browser origin ("*" allows any); {} otherwise, so the browser refuses
    the answer to a page of any other origin."""
    allowed = tuple(allowed_origins)
    if not allowed:
        return {}
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS}
    if origin and origin in allowed:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
            "Vary": "Origin",
        }
    return {}


def gateway_cors_headers(allowed_origins: Iterable[str]) -> dict[str, str]:
    """The CORS headers of API Gateway's own answers, so that a page on an allowed origin can read a 429
    or 403 and its Retry-After. A gateway response's headers are static (it cannot compare the request's
    Origin with a list), so only "*" or a single allowed origin get them; with several, none (echoing the
    request's Origin would open those answers to every site), and browsers see a network error instead.
    """
    allowed = tuple(allowed_origins)
    if "*" in allowed:
        origin = "*"
    elif len(allowed) == 1:
        origin = allowed[0]
    else:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS}


def preflight_response(
    origin: str | None, allowed_origins: Iterable[str], methods: Iterable[str]
) -> dict[str, Any]:
    """Answer to a CORS preflight (OPTIONS, routed to the function): 204, with the CORS headers only for
    an allowed origin, so a browser on any other origin is refused by the browser itself."""
    headers = cors_headers(origin, allowed_origins)
    if headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": ", ".join((*methods, "OPTIONS")),
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS),
            }
        )
    return {
        "statusCode": int(HTTPStatus.NO_CONTENT),
        "headers": headers,
        "body": "",
        "isBase64Encoded": False,
    }


def parse_origins(value: str | None) -> tuple[str, ...]:
    """Comma-separated origins from the environment (constants.ENV_CORS_ALLOWED_ORIGINS)."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


# --- POST /v1/events response vocabulary (shared with the OpenAPI document and the producer client) ----
# Why a valid event could not be stored after retries; every such event is retryable by the client.
REASON_THROTTLED: Final = "throttled"
REASON_STREAM_UNAVAILABLE: Final = "stream_unavailable"
FAILURE_REASONS: Final = (REASON_THROTTLED, REASON_STREAM_UNAVAILABLE)
# Seconds a client should wait before resending after a 503 (stream or functions at capacity) or a
# throttled 429: the Retry-After of ingest's answers and of the stack's gateway responses.
RETRY_AFTER_SECONDS: Final = 1
