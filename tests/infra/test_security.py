"""Encryption on every store, HTTPS-only policies, least-privilege IAM through grants."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import QUEUES, TABLES, Synth, arn_of, ref

# Services whose actions read or write our data; a wildcard here would be a data-plane grant to anything.
DATA_PLANE_SERVICES = ("dynamodb", "kinesis", "sqs", "sns", "kms", "s3", "lambda")
# Actions AWS offers no resource-level permission for; "*" is the only possible resource.
RESOURCELESS_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def _statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM statement attached to a principal of ours (policies and inline role policies)."""
    found = []
    for logical_id, res in synth.resources.items():
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found += [(logical_id, s) for s in props["PolicyDocument"]["Statement"]]
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _function_statements(synth: Synth, function_prefix: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the function's role."""
    fn = synth.props("AWS::Lambda::Function", function_prefix)
    role_id = fn["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synth.of_type("AWS::IAM::Policy").values()
        if ref(role_id) in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _function_policy_actions(synth: Synth, function_prefix: str) -> dict[str, list[Any]]:
    """action -> resources granted to the function's role."""
    grants: dict[str, list[Any]] = {}
    for statement in _function_statements(synth, function_prefix):
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            grants.setdefault(action, []).extend(_as_list(statement["Resource"]))
    return grants


def _table_statements(synth: Synth, function_prefix: str, table_prefix: str) -> list[dict[str, Any]]:
    table_id, _ = synth.one("AWS::DynamoDB::Table", table_prefix)
    return [
        s for s in _function_statements(synth, function_prefix) if arn_of(table_id) in _as_list(s["Resource"])
    ]


DYNAMODB_WRITES = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
}


def test_no_policy_grants_a_wildcard_action_or_a_data_action_on_every_resource(synth: Synth) -> None:
    statements = _statements(synth)
    assert statements, "expected IAM policies in the template"
    for logical_id, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = _as_list(statement["Action"])
        for action in actions:
            service, _, name = action.partition(":")
            assert action != "*" and name != "*", f"{logical_id} grants {action}"
        if "*" in _as_list(statement.get("Resource", [])):
            assert set(actions) <= RESOURCELESS_ACTIONS, f"{logical_id} grants {actions} on *"
            assert not any(a.split(":")[0] in DATA_PLANE_SERVICES for a in actions)


def test_ingest_may_only_write_to_the_events_stream(synth: Synth) -> None:
    stream_id, _ = synth.one("AWS::Kinesis::Stream")
    grants = _function_policy_actions(synth, "IngestFunction")
    assert grants["kinesis:PutRecords"] == [arn_of(stream_id)]
    assert not any(a.startswith(("dynamodb:", "sqs:")) for a in grants)
    assert "kinesis:GetRecords" not in grants


def test_serve_may_only_read_the_feature_tables(synth: Synth) -> None:
    grants = _function_policy_actions(synth, "ServeFunction")
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    assert not writes & set(grants)
    users_id, _ = synth.one("AWS::DynamoDB::Table", "TablesUsers")
    items_id, _ = synth.one("AWS::DynamoDB::Table", "TablesItems")
    assert sorted(map(str, grants["dynamodb:BatchGetItem"])) == sorted(
        map(str, [arn_of(users_id), arn_of(items_id)])
    )
    assert not any(a.startswith(("kinesis:", "sqs:")) for a in grants)


def test_process_writes_the_users_table_and_sends_to_both_queues_but_never_writes_the_stream(
    synth: Synth,
) -> None:
    grants = _function_policy_actions(synth, "ProcessingProcess")
    users_id, _ = synth.one("AWS::DynamoDB::Table", "TablesUsers")
    dlq_id, _ = synth.one("AWS::SQS::Queue", "ProcessingDeadLetterQueue")
    on_failure_id, _ = synth.one("AWS::SQS::Queue", "ProcessingOnFailureQueue")
    assert grants["dynamodb:PutItem"] == [arn_of(users_id)]
    assert sorted(map(str, grants["sqs:SendMessage"])) == sorted(
        map(str, [arn_of(dlq_id), arn_of(on_failure_id)])
    )
    assert "kinesis:PutRecords" not in grants and "kinesis:PutRecord" not in grants


def test_process_only_reads_the_branches_progress_rows_of_the_items_table(synth: Synth) -> None:
    # The hot path writes user rows only: on the items table it reads the branches' progress rows.
    [statement] = _table_statements(synth, "ProcessingProcess", "TablesItems")
    assert set(_as_list(statement["Action"])) == {"dynamodb:BatchGetItem", "dynamodb:GetItem"}
    assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["progress#*"]}}


@pytest.mark.parametrize("branch", ["BranchesItems", "BranchesExperiments"])
def test_branches_only_read_the_users_table(synth: Synth, branch: str) -> None:
    statements = _table_statements(synth, branch, "TablesUsers")
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert "dynamodb:BatchGetItem" in actions
    assert not actions & DYNAMODB_WRITES


@pytest.mark.parametrize(
    ("branch", "leading_keys"),
    [
        (
            "BranchesItems",
            ["item#*", "trending#partial", "trending#global", "trending#cat#*", "progress#items"],
        ),
        ("BranchesExperiments", ["experiment#*", "progress#experiments"]),
    ],
)
def test_branches_write_only_their_own_rows_of_the_items_table(
    synth: Synth, branch: str, leading_keys: list[str]
) -> None:
    # Given every statement of the branch on the items table
    [statement] = _table_statements(synth, branch, "TablesItems")
    actions = set(_as_list(statement["Action"]))
    # Then it reads and writes rows ...
    assert {"dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem"} <= actions
    # ... only those whose partition key is the branch's own (users' rows, the other branch's rows,
    # anything else is refused by IAM) ...
    assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": leading_keys}}
    # ... and nothing without a partition key, which a ForAllValues condition would let through.
    assert not actions & {"dynamodb:Scan", "dynamodb:DescribeTable", "dynamodb:*"}


def test_each_function_writes_logs_only_to_its_own_log_group(synth: Synth) -> None:
    for prefix in (
        "IngestFunction",
        "ServeFunction",
        "ProcessingProcessFunction",
        "BranchesItemsFunction",
        "BranchesExperimentsFunction",
    ):
        fn = synth.props("AWS::Lambda::Function", prefix)
        group_id = fn["LoggingConfig"]["LogGroup"]["Ref"]
        grants = _function_policy_actions(synth, prefix)
        assert grants["logs:PutLogEvents"] == [arn_of(group_id)]
        # No AWSLambdaBasicExecutionRole (logs:* on every log group of the account).
        role = synth.resources[fn["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert "ManagedPolicyArns" not in role


@pytest.mark.parametrize(
    ("cfn_type", "stores", "key_prefix", "get_key"),
    [
        ("AWS::Kinesis::Stream", ("EventsStream",), "EventsKey", lambda p: p["StreamEncryption"]["KeyId"]),
        ("AWS::DynamoDB::Table", TABLES, "TablesKey", lambda p: p["SSESpecification"]["KMSMasterKeyId"]),
        ("AWS::SQS::Queue", QUEUES, "ProcessingQueueKey", lambda p: p["KmsMasterKeyId"]),
        ("AWS::SNS::Topic", ("MonitoringAlarmTopic",), "MonitoringTopicKey", lambda p: p["KmsMasterKeyId"]),
    ],
)
def test_every_store_is_encrypted_with_its_customer_managed_key(
    synth: Synth, cfn_type: str, stores: tuple[str, ...], key_prefix: str, get_key: Any
) -> None:
    key_id, key = synth.one("AWS::KMS::Key", key_prefix)
    for store in synth.every(cfn_type, *stores).values():
        assert get_key(store["Properties"]) == arn_of(key_id)
    assert key["Properties"]["EnableKeyRotation"] is True


def test_stream_encryption_is_kms(synth: Synth) -> None:
    assert synth.props("AWS::Kinesis::Stream")["StreamEncryption"]["EncryptionType"] == "KMS"


def test_every_queue_denies_requests_without_tls(synth: Synth) -> None:
    queues = synth.every("AWS::SQS::Queue", *QUEUES)
    policies = synth.of_type("AWS::SQS::QueuePolicy").values()
    for queue_id in queues:
        denies = [
            s
            for p in policies
            if ref(queue_id) in p["Properties"]["Queues"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
        ]
        assert any(
            s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and s["Action"] == "sqs:*"
            and s["Resource"] == arn_of(queue_id)
            for s in denies
        ), queue_id


def test_alarm_topic_denies_publishing_without_tls_and_lets_cloudwatch_use_its_key(synth: Synth) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic")
    policy = synth.props("AWS::SNS::TopicPolicy")
    assert policy["Topics"] == [ref(topic_id)]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["PolicyDocument"]["Statement"]
    )
    _, key = synth.one("AWS::KMS::Key", "MonitoringTopicKey")
    # Without this, CloudWatch cannot publish to the encrypted topic and alarms notify nobody.
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(_as_list(s["Action"]))
        for s in key["Properties"]["KeyPolicy"]["Statement"]
    )
