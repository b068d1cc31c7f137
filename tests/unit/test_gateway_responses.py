"""API Gateway's own answers (streamrec_core.http.gateway_response): the shared error shape, Retry-After
on overload, and CORS headers only where a static header can name the allowed origins."""

from __future__ import annotations

import json

import pytest
from streamrec_core.http import GATEWAY_ERRORS, RETRY_AFTER_SECONDS, STATUS_BY_CODE, gateway_response


@pytest.mark.parametrize("response_type", list(GATEWAY_ERRORS))
def test_each_answer_is_the_shared_shape_with_api_gateways_request_id(response_type: str) -> None:
    status, template, headers = gateway_response(response_type)
    error = json.loads(template)["error"]
    assert error["code"] in STATUS_BY_CODE and error["message"]
    assert error["request_id"] == "$context.requestId"
    assert status is None or status == STATUS_BY_CODE[error["code"]]
    assert ("Retry-After" in headers) == GATEWAY_ERRORS[response_type].retry_after
    assert headers.get("Retry-After", str(RETRY_AFTER_SECONDS)) == str(RETRY_AFTER_SECONDS)


@pytest.mark.parametrize(
    ("origins", "allowed"),
    [
        ((), None),
        (("https://shop.example",), "https://shop.example"),
        (("*",), "*"),
        (("https://a.example", "*"), "*"),
        # a static header cannot choose between two origins; echoing Origin would allow every site
        (("https://a.example", "https://b.example"), None),
    ],
)
def test_cors_headers_name_the_allowed_origin_when_one_static_header_can(origins, allowed) -> None:
    _, _, headers = gateway_response("THROTTLED", origins)
    assert headers.get("Access-Control-Allow-Origin") == allowed
    if allowed is None:
        assert not [name for name in headers if name.startswith("Access-Control-")]
    else:
        assert "Retry-After" in headers["Access-Control-Expose-Headers"]
