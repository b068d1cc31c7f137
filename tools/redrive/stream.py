"""Kinesis access for redrive: re-read the range of a given-up batch by sequence number."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from streamrec_core.kinesis import KinesisRecord

from tools.redrive.messages import FailedBatch, MessageProblem

GET_RECORDS_LIMIT = 1000


def read_range(kinesis: Any, batch: FailedBatch) -> list[KinesisRecord]:
    """Records start..end of the shard (sequence numbers compared as integers, never as strings).

    Raises MessageProblem when the range can no longer be read whole (trimmed by retention, stream gone).
    """
    first, last = int(batch.start), int(batch.end)
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=batch.stream_name,
            ShardId=batch.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=batch.start,
        )["ShardIterator"]
    except ClientError as error:
        raise MessageProblem(f"the stream refused the range: {error}") from None
    records: list[KinesisRecord] = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
        for raw in page.get("Records", []):
            seq = int(raw["SequenceNumber"])
            if seq > last:
                return _whole(records, first, batch)
            if seq < first:
                continue
            arrival = raw.get("ApproximateArrivalTimestamp")
            records.append(
                KinesisRecord(
                    shard_id=batch.shard_id,
                    sequence_number=str(raw["SequenceNumber"]),
                    partition_key=raw.get("PartitionKey", ""),
                    data=bytes(raw["Data"]),
                    arrival_ms=int(round(arrival.timestamp(), 3) * 1000) if arrival is not None else 0,
                    event_source_arn=batch.stream_arn,
                )
            )
            if seq == last:
                return _whole(records, first, batch)
        if not page.get("Records") and not page.get("MillisBehindLatest"):
            break  # at the tip of an open shard, or the end of a closed one
        iterator = page.get("NextShardIterator")
    return _whole(records, first, batch)


def _whole(records: list[KinesisRecord], first: int, batch: FailedBatch) -> list[KinesisRecord]:
    whole = (
        records
        and int(records[0].sequence_number) == first
        and int(records[-1].sequence_number) == int(batch.end)
        and (batch.batch_size <= 0 or len(records) >= batch.batch_size)
    )
    if not whole:
        raise MessageProblem(
            f"read {len(records)} of {batch.batch_size} records (trimmed from the stream by retention?)"
        )
    return records
