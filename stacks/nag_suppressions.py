"""Every accepted cdk-nag (AwsSolutions) finding, each with the reason we accept it, and nothing else.

cdk-nag v3 runs as a CDK policy-validation plugin; an accepted finding is a CDK acknowledgment on the
narrowest construct it concerns, so the same finding elsewhere in the stack still fails the synth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

if TYPE_CHECKING:
    from stacks.streamrec_stack import StreamrecStack


def _ack(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def apply_nag_suppressions(stack: StreamrecStack) -> None:
    functions = (
        stack.ingest,
        stack.processing.process,
        stack.branches.items,
        stack.branches.experiments,
        stack.serve,
    )
    for fn in functions:
        _ack(
            fn.function,
            "AwsSolutions-L1",
            "Pinned to python3.12 on purpose: the public Powertools v3 layer is published per Python "
            "version; moving on is one runtime + layer change, covered by the infrastructure tests.",
        )
        _ack(
            fn.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing); X-Ray supports no "
            "resource-level permissions for them. Every data-plane grant names its table, stream or queue.",
        )
    # Encrypting writers (stream.grantWrite, queue.grantSendMessages, table writes) need
    # kms:GenerateDataKey* and kms:ReEncrypt* on the one customer-managed key of that store; the grants
    # name the key ARN.
    for fn in (stack.ingest, stack.processing.process, stack.branches.items, stack.branches.experiments):
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            _ack(
                fn.role,
                f"AwsSolutions-IAM5[Action::{action}]",
                "KMS data-key actions for writing to an encrypted stream, queue or table, scoped to the "
                "ARN of that store's own key.",
            )
    for queue in (stack.processing.dead_letter_queue, stack.processing.on_failure_queue):
        _ack(
            queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination (poison records / ESM on-failure); it is "
            "drained by an operator with `make redrive`, alarmed on depth, and has nowhere further to go.",
        )
    _ack(
        stack.events.stream,
        "AwsSolutions-KDS3",
        "A customer-managed key is a security requirement of this project (key policy and rotation under "
        "our control, auditable use); its per-request KMS cost is in the cost model.",
    )
    api = stack.api.rest_api
    cloudwatch_role = api.node.find_child("CloudWatchRole")
    _ack(
        cloudwatch_role,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AmazonAPIGatewayPushToCloudWatchLogs]",
        "The AWS-managed policy AWS documents for API Gateway's account-level CloudWatch role; it is what "
        "execution logging requires and is scoped to CloudWatch Logs.",
    )
    _ack(
        api.deployment_stage,
        "AwsSolutions-APIG3",
        "WAF is an account/organisation-level decision with its own cost; the API is protected by API "
        "keys, usage-plan throttles and quotas, stage throttling, request-size limits and strict schema "
        "validation. "
        "Associate a WebACL with the stage where the organisation mandates WAF.",
    )
    for method in stack.api.methods.values():
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            _ack(
                method,
                rule,
                "Callers are producer and reader applications identified by API keys tied to usage plans "
                "(the product's access model); there are no end-user identities to authorize. /v1/health "
                "and CORS preflights are keyless by design (load balancers; browsers send no key on "
                "preflights).",
            )
