"""Feature tables: users (one item per user) and items (profiles, windows, trending lists on pk/sk).

Keys and the TTL attribute come from `streamrec_core.constants`, the same names the functions use.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct
from streamrec_core import constants as c


class FeatureTables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="streamrec feature tables",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.users = self._table(
            "Users", removal_policy, dynamodb.Attribute(name=c.USERS_PK, type=dynamodb.AttributeType.STRING)
        )
        self.items = self._table(
            "Items",
            removal_policy,
            dynamodb.Attribute(name=c.ITEMS_PK, type=dynamodb.AttributeType.STRING),
            dynamodb.Attribute(name=c.ITEMS_SK, type=dynamodb.AttributeType.STRING),
        )

    def _table(
        self,
        construct_id: str,
        removal_policy: RemovalPolicy,
        partition_key: dynamodb.Attribute,
        sort_key: dynamodb.Attribute | None = None,
    ) -> dynamodb.Table:
        """A feature table: on demand, encrypted with the tables' key, TTL, point-in-time recovery."""
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=partition_key,
            sort_key=sort_key,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            time_to_live_attribute=c.TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal_policy,
        )
