"""Test function behind the fixture API: echoes the proxy event, or misbehaves on request."""

import json


def handler(event, context):
    path = event.get("path", "")
    if path.startswith("/boom"):
        raise RuntimeError("boom on purpose")
    if path.startswith("/malformed"):
        return "not a proxy response"
    body = {
        "event": event,
        "context": {
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }
    return {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "x-single": "one"},
        "multiValueHeaders": {"x-multi": ["a", "b"]},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
