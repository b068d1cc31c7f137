"""Test function behind the fixture stream: fails on records whose data is b"poison"."""

import base64


def handler(event, context):
    for record in event["Records"]:
        if base64.b64decode(record["kinesis"]["data"]) == b"poison":
            raise ValueError("poison record")
    return {"batchItemFailures": []}
