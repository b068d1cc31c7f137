"""Feature tables: keys and TTL attribute shared with the functions through streamrec_core.constants."""

from __future__ import annotations

from streamrec_core import constants as c

from tests.infra.conftest import TABLES, Synth, arn_of


def test_users_table_is_keyed_by_user_id(synth: Synth) -> None:
    props = synth.props("AWS::DynamoDB::Table", "TablesUsers")
    assert props["KeySchema"] == [{"AttributeName": c.USERS_PK, "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": c.USERS_PK, "AttributeType": "S"}]


def test_items_table_has_generic_string_partition_and_sort_keys(synth: Synth) -> None:
    props = synth.props("AWS::DynamoDB::Table", "TablesItems")
    assert props["KeySchema"] == [
        {"AttributeName": c.ITEMS_PK, "KeyType": "HASH"},
        {"AttributeName": c.ITEMS_SK, "KeyType": "RANGE"},
    ]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": c.ITEMS_PK, "AttributeType": "S"},
        {"AttributeName": c.ITEMS_SK, "AttributeType": "S"},
    ]


def test_both_tables_expire_items_on_the_shared_ttl_attribute(synth: Synth) -> None:
    for table in synth.every("AWS::DynamoDB::Table", *TABLES).values():
        ttl = table["Properties"]["TimeToLiveSpecification"]
        assert ttl == {"AttributeName": c.TTL_ATTRIBUTE, "Enabled": True}


def test_tables_are_on_demand_with_point_in_time_recovery_and_a_customer_managed_key(synth: Synth) -> None:
    key_id, _ = synth.one("AWS::KMS::Key", "TablesKey")
    for table in synth.every("AWS::DynamoDB::Table", *TABLES).values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"] == {
            "KMSMasterKeyId": arn_of(key_id),
            "SSEEnabled": True,
            "SSEType": "KMS",
        }
