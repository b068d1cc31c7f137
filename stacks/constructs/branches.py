"""The aggregate branches: two more event source mappings on the events stream, off the hot path.

- items (`aggregate.handler.items`): co-visitation rows, each shard's trending partial and the merged
  trending lists, from larger batches with a batching window;
- experiments (`aggregate.handler.experiments`): per-variant counters, on a mapping whose filter criteria
  let through only records carrying an attribution (Lambda drops the others before batching and
  checkpoints past them).

Both resolve each record against the user row the hot path wrote (read only) and write the items table.
ParallelizationFactor is 1 on both, not a setting: a branch keeps one watermark per shard on shared
rows, which holds only while one invocation per shard applies its records in sequence order. Neither
gives a batch up, so neither has an on-failure destination (see `_source`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct
from streamrec_core import constants as c

from stacks.constructs.functions import FunctionDependencies, StreamrecFunction
from stacks.constructs.processing import feature_environment
from stacks.settings import BranchSourceSettings, FunctionSettings, Settings

# One invocation per shard at a time (see the module docstring); AWS's default, stated so no setting or
# later default can change it.
BRANCH_PARALLELIZATION_FACTOR = 1
# Items-table partition keys each branch writes (dynamodb:LeadingKeys, see `_grant_items`).
ITEMS_BRANCH_KEYS = (
    f"{c.ITEM_PK_PREFIX}*",
    c.TRENDING_PARTIAL_PK,
    c.TRENDING_GLOBAL_PK,
    f"{c.TRENDING_CATEGORY_PK_PREFIX}*",
    c.PROGRESS_PK_PREFIX + c.ITEMS_BRANCH,
)
EXPERIMENTS_BRANCH_KEYS = (f"{c.EXPERIMENT_PK_PREFIX}*", c.PROGRESS_PK_PREFIX + c.EXPERIMENTS_BRANCH)
# Item-level actions only: each carries the partition key LeadingKeys checks. Scan and DescribeTable are
# left out on purpose (a request without a partition key passes a ForAllValues condition vacuously).
ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)


class AggregateBranches(Construct):
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
        self._settings = settings
        self._stream = stream
        self._users = users
        self._items = items
        self._dependencies = dependencies

        self.items = self._branch(
            "Items",
            entry="items",
            service=c.AGGREGATE_SERVICE,
            sizing=settings.functions.aggregate,
            description="Kinesis batches -> co-visitation rows and trending partials/lists (items branch)",
            leading_keys=ITEMS_BRANCH_KEYS,
        )
        self.items_source = self._source(self.items, settings.aggregate_source)

        self.experiments = self._branch(
            "Experiments",
            entry="experiments",
            service=c.EXPERIMENTS_SERVICE,
            sizing=settings.functions.experiments,
            description="Attributed events -> per-variant counters (experiments branch, filtered)",
            leading_keys=EXPERIMENTS_BRANCH_KEYS,
        )
        self.experiments_source = self._source(
            self.experiments,
            settings.experiments_source,
            # Kinesis filters match the record's data parsed as JSON, and `exists` matches leaf values
            # only: hence the attribution's (required) variant.
            filters=[lambda_.FilterCriteria.filter(c.ATTRIBUTED_RECORDS_PATTERN)],
        )

    def _branch(
        self,
        construct_id: str,
        *,
        entry: str,
        service: str,
        sizing: FunctionSettings,
        description: str,
        leading_keys: Sequence[str],
    ) -> StreamrecFunction:
        branch = StreamrecFunction(
            self,
            construct_id,
            folder="aggregate",
            entry=entry,
            service=service,
            sizing=sizing,
            settings=self._settings,
            dependencies=self._dependencies,
            description=description,
            environment={
                c.ENV_USERS_TABLE: self._users.table_name,
                c.ENV_ITEMS_TABLE: self._items.table_name,
                c.ENV_HOT_PATH_MAX_RECORD_AGE_SECONDS: str(
                    int(self._settings.event_source.max_record_age.to_seconds())
                ),
                **feature_environment(self._settings),
            },
        )
        self._users.grant_read_data(branch.function)
        self._grant_items(branch.function, leading_keys)
        return branch

    def _grant_items(self, fn: lambda_.IFunction, leading_keys: Sequence[str]) -> None:
        """Read and write the items table, but only rows whose partition key is the branch's own."""
        iam.Grant.add_to_principal(
            grantee=fn,
            actions=list(ITEM_ACTIONS),
            resource_arns=[self._items.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(leading_keys)}},
        )
        key = self._items.encryption_key
        assert key is not None, "the feature tables are encrypted with a customer-managed key"
        key.grant_encrypt_decrypt(fn)

    def _source(
        self,
        branch: StreamrecFunction,
        source: BranchSourceSettings,
        filters: Sequence[Mapping[str, Any]] | None = None,
    ) -> sources.KinesisEventSource:
        # Every value by keyword from its own setting (tests compare each with a distinct number).
        # Retries and record age are left infinite: a branch never gives a batch up. It waits for the hot
        # path (a record the hot path has not applied yet is handed back), skips what the hot path's own
        # mapping gave up (redrive applies it), and a failing record stops only its shard, paging on-call
        # (iterator age, errors), until fixed: nothing is lost. Bisect still isolates such a record.
        event_source = sources.KinesisEventSource(
            self._stream,
            starting_position=lambda_.StartingPosition[self._settings.event_source.starting_position],
            batch_size=source.batch_size,
            max_batching_window=source.max_batching_window,
            parallelization_factor=BRANCH_PARALLELIZATION_FACTOR,
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            filters=filters,
        )
        branch.function.add_event_source(event_source)
        return event_source
