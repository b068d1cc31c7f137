"""Test functions behind the fixture's branch stream: three mappings, one module, three handler names
(like streamrec's aggregate.handler.items / .experiments). Each batch is reported to a queue."""

import base64
import json
import os

import boto3
import msgspec  # provided by a layer in AWS; locally by the venv (the emulator ignores layers)

_sqs = boto3.client("sqs")


def _record(event, branch):
    records = event["Records"]
    _sqs.send_message(
        QueueUrl=os.environ["RECORDED_QUEUE_URL"],
        MessageBody=json.dumps(
            {
                "branch": branch,
                "sequence_numbers": [r["kinesis"]["sequenceNumber"] for r in records],
                "partition_keys": [r["kinesis"]["partitionKey"] for r in records],
                "decodable": [_is_json(base64.b64decode(r["kinesis"]["data"])) for r in records],
            }
        ),
    )
    return {"batchItemFailures": []}


def _is_json(data):
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError:
        return False
    return True


def hot(event, context):
    return _record(event, "hot")


def items(event, context):
    return _record(event, "items")


def experiments(event, context):
    return _record(event, "experiments")
