"""Stream processing (the hot path): the process function, its Kinesis event source mapping and the
two queues.

- on-failure queue: the destination of every event source mapping of the stream (this one and the
  aggregate branches'); receives AWS's batch metadata (function ARN, shard, sequence range) once
  retries or record age are exhausted, for `make redrive`, which tells the consumers apart by the
  function ARN.
- dead-letter queue: the process function itself sends records that can never succeed (undecodable,
  invalid), with payload and reason, so they never block their shard.

The process function writes the users table only (one conditional write per changed user row): the item
aggregates are the branches' (`stacks.constructs.branches`).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from streamrec_core import constants as c

from stacks.constructs.functions import FunctionDependencies, StreamrecFunction
from stacks.settings import Settings

# SQS keeps messages at most 14 days; an operator needs all of it to redrive after a long weekend.
QUEUE_RETENTION = Duration.days(14)


def _seconds(d: Duration) -> str:
    return str(int(d.to_seconds()))


def feature_environment(settings: Settings) -> dict[str, str]:
    """The feature model's settings, the same for the hot path and the aggregate branches."""
    features = settings.features
    return {
        c.ENV_USER_TTL_SECONDS: _seconds(features.user_ttl),
        c.ENV_ITEM_TTL_SECONDS: _seconds(features.item_ttl),
        c.ENV_ALLOWED_LATENESS_SECONDS: _seconds(features.allowed_lateness),
        c.ENV_OUTBOX_RETENTION_SECONDS: _seconds(features.outbox_retention),
    }


class Processing(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        stream: kinesis.IStream,
        users: dynamodb.ITable,
        items: dynamodb.ITable,
        dependencies: FunctionDependencies,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "QueueKey",
            description="streamrec dead-letter and on-failure queues",
            enable_key_rotation=True,
            removal_policy=settings.removal_policy,
        )
        self.dead_letter_queue = self._queue("DeadLetterQueue", settings)
        self.on_failure_queue = self._queue("OnFailureQueue", settings)

        self.process = StreamrecFunction(
            self,
            "Process",
            folder="process",
            service=c.PROCESS_SERVICE,
            sizing=settings.functions.process,
            settings=settings,
            dependencies=dependencies,
            description="Kinesis batches -> one conditional write per changed user row",
            environment={
                c.ENV_USERS_TABLE: users.table_name,
                c.ENV_ITEMS_TABLE: items.table_name,
                c.ENV_DLQ_URL: self.dead_letter_queue.queue_url,
                **feature_environment(settings),
            },
        )
        fn = self.process.function
        users.grant_read_write_data(fn)
        # The branches' progress rows only, read with the user rows (to release consumed outbox entries).
        iam.Grant.add_to_principal(
            grantee=fn,
            actions=["dynamodb:BatchGetItem", "dynamodb:GetItem"],
            resource_arns=[items.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{c.PROGRESS_PK_PREFIX}*"]}},
        )
        assert items.encryption_key is not None, (
            "the feature tables are encrypted with a customer-managed key"
        )
        items.encryption_key.grant_decrypt(fn)
        self.dead_letter_queue.grant_send_messages(fn)

        es = settings.event_source
        # Every value is passed by keyword from its own setting; tests check each one against a distinct
        # number, because swapped retries/parallelization went unnoticed for years elsewhere.
        self.event_source = sources.KinesisEventSource(
            stream,
            starting_position=lambda_.StartingPosition[es.starting_position],
            batch_size=es.batch_size,
            max_batching_window=es.max_batching_window,
            parallelization_factor=es.parallelization_factor,
            retry_attempts=es.retry_attempts,
            max_record_age=es.max_record_age,
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            on_failure=sources.SqsDlq(self.on_failure_queue),
        )
        fn.add_event_source(self.event_source)

    def _queue(self, construct_id: str, settings: Settings) -> sqs.Queue:
        """Encrypted with the queues' key, HTTPS only, keeping messages as long as SQS allows."""
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=QUEUE_RETENTION,
            removal_policy=settings.removal_policy,
        )
