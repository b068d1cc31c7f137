"""The Lambda proxy integration (AWS_PROXY) as API Gateway maps it: an HTTP request to the REST proxy
event (payload version 1.0) and the function's ``{statusCode, headers, multiValueHeaders, body,
isBase64Encoded}`` back to an HTTP answer.

The event names the accepted key in ``requestContext.identity.apiKey`` / ``apiKeyId`` (null on keyless
methods); headers and query parameters appear single- and multi-valued; a body is base64 when its media
type is one of the API's binary media types or it is not UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
from typing import Any
from urllib.parse import parse_qsl

from local_emulator import aws
from local_emulator.rest_api import ApiKey, Method, RestApiModel


def proxy_event(
    model: RestApiModel,
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
    """API Gateway's REST proxy event (payload version 1.0) for one request to `method`; `key` is the API
    key API Gateway accepted (None on keyless methods)."""
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
    text, is_base64 = _body(body, content_type, model.binary_media_types)
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
        "stageVariables": model.stages.get(stage) or None,
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
            "domainPrefix": model.api_id,
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
            "domainName": f"{model.api_id}.execute-api.{aws.REGION}.amazonaws.com",
            "apiId": model.api_id,
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


def proxy_response(payload: Any) -> tuple[int, list[tuple[str, str]], bytes] | None:
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
