"""The events stream: Kinesis, encrypted with a customer-managed key, mode and retention from settings."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.settings import StreamSettings


class EventStream(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StreamSettings, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="streamrec events stream",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        provisioned = settings.mode == "PROVISIONED"
        self.stream = kinesis.Stream(
            self,
            "Stream",
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=self.key,
            retention_period=settings.retention,
            stream_mode=kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND,
            shard_count=settings.shard_count if provisioned else None,
            removal_policy=removal_policy,
        )
