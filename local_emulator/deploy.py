"""Deploy a synthesized cloud assembly into moto, the way ``cdk deploy`` deploys it into AWS.

1. Bootstrap: create the assets bucket ``cdk-hnb659fds-assets-<account>-<region>`` and the SSM parameter
   ``/cdk-bootstrap/hnb659fds/version`` the template's BootstrapVersion parameter reads.
2. Publish every file asset (directories zipped here, deterministically) under the object key the
   template expects.
3. Create the SAME template with CloudFormation in moto and wait for CREATE_COMPLETE.
4. moto's CloudFormation skips some resource types. For those the runtime needs, the deploy step reads
   their properties from the same template, resolves their intrinsics against the created resources
   and creates them through moto's own APIs:
   - ``AWS::ApiGateway::Stage``: ``CreateStage`` on the API's deployment;
   - ``AWS::ApiGateway::ApiKey``: ``CreateApiKey`` with the template's value or a generated 40-char one;
   - ``AWS::ApiGateway::UsagePlan``: ``CreateUsagePlan`` with its stages, throttle and quota;
   - ``AWS::ApiGateway::UsagePlanKey``: ``CreateUsagePlanKey``;
   - ``AWS::ApiGateway::GatewayResponse``: ``PutGatewayResponse`` (status, headers, templates);
   - ``AWS::CloudWatch::Alarm``: ``PutMetricAlarm`` (the local runtime evaluates the ones it can);
   - ``AWS::SNS::Subscription``: ``Subscribe`` (SQS, Lambda, email...; moto delivers to SQS queues).
   ``AWS::ApiGateway::Account`` (the account's CloudWatch role) has no local meaning and is skipped.
   Stack outputs, function environment variables and dashboard bodies that refer to those resources
   (e.g. the API key ids the functions accept, the API stage a dashboard graphs) are recomputed from
   the template; the environments and dashboards are updated in moto.
The local runtime then reads everything back from moto's APIs, never from a second description.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import string
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_emulator import aws
from local_emulator.assembly import CloudAssembly, FileAsset, StackArtifact
from local_emulator.intrinsics import Resolver, StackContext, Unresolvable

log = logging.getLogger(__name__)

SKIPPED_BY_MOTO = (
    "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
    "AWS::ApiGateway::GatewayResponse",
    "AWS::ApiGateway::Account",
    "AWS::CloudWatch::Alarm",
    "AWS::SNS::Subscription",
)
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass
class FunctionCode:
    """Where a deployed function's code is: an S3 object (asset) or inline source."""

    function_name: str
    logical_id: str
    bucket: str | None = None
    key: str | None = None
    zip_file: str | None = None


@dataclass
class DeployedStack:
    """What the deploy created for one stack."""

    stack_name: str
    stack_id: str
    template: dict[str, Any]
    physical_ids: dict[str, str]
    outputs: dict[str, str]
    functions: dict[str, FunctionCode] = field(default_factory=dict)  # by function name
    api_keys: dict[str, dict[str, str]] = field(default_factory=dict)  # logical id -> {id, name, value}
    alarms: list[str] = field(default_factory=list)


def deploy(assembly: CloudAssembly, endpoint: str, region: str = aws.REGION) -> list[DeployedStack]:
    """Deploy every stack of `assembly` (in dependency order) into the moto server at `endpoint`."""
    bootstrap(endpoint, region)
    deployed = []
    for stack in assembly.stacks:
        publish_assets(stack.assets, endpoint, region)
        deployed.append(deploy_stack(stack, endpoint, region))
    return deployed


def bootstrap(endpoint: str, region: str = aws.REGION) -> None:
    """Create what ``cdk bootstrap`` creates and a deploy checks: the assets bucket and the version."""
    s3 = aws.client("s3", endpoint, region)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if aws.ASSETS_BUCKET not in existing:
        s3.create_bucket(Bucket=aws.ASSETS_BUCKET)
    aws.client("ssm", endpoint, region).put_parameter(
        Name=aws.BOOTSTRAP_VERSION_PARAMETER, Value=aws.BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )


def publish_assets(assets: list[FileAsset], endpoint: str, region: str = aws.REGION) -> None:
    """Upload file assets to their destination bucket and key (zipping directories)."""
    s3 = aws.client("s3", endpoint, region)
    buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for asset in assets:
        if asset.bucket not in buckets:
            s3.create_bucket(Bucket=asset.bucket)
            buckets.add(asset.bucket)
        if asset.packaging == "zip" and asset.source.is_dir():
            body = zip_directory(asset.source)
        else:
            body = asset.source.read_bytes()
        s3.put_object(Bucket=asset.bucket, Key=asset.key, Body=body)


def zip_directory(directory: Path) -> bytes:
    """Zip a directory like the CDK CLI: relative paths, sorted, fixed timestamps (stable bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                path = Path(root) / name
                info = zipfile.ZipInfo(str(path.relative_to(directory)), date_time=_ZIP_EPOCH)
                info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def deploy_stack(stack: StackArtifact, endpoint: str, region: str = aws.REGION) -> DeployedStack:
    """Create one stack in moto's CloudFormation, then the resources moto skips."""
    cloudformation = aws.client("cloudformation", endpoint, region)
    started = time.monotonic()
    response = cloudformation.create_stack(
        StackName=stack.stack_name,
        TemplateBody=json.dumps(stack.template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack_id = response["StackId"]
    _wait_complete(cloudformation, stack.stack_name)
    log.info("stack %s created in moto in %.1f s", stack.stack_name, time.monotonic() - started)

    created = _stack_resources(cloudformation, stack.stack_name)
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId") or ""
        for r in created
        if r.get("LogicalResourceId") and r.get("ResourceType") not in SKIPPED_BY_MOTO
    }
    ignored = sorted(
        {
            resource.get("Type", "")
            for logical_id, resource in stack.template.get("Resources", {}).items()
            if logical_id not in physical and resource.get("Type") not in SKIPPED_BY_MOTO
        }
    )
    if ignored:
        log.info("moto's CloudFormation skipped (no local effect): %s", ", ".join(ignored))
    context = StackContext(stack.stack_name, stack_id, stack.template, physical, region=region)
    resolver = Resolver(context, fallback=_fallback_attributes(endpoint, region, context))
    deployed = DeployedStack(stack.stack_name, stack_id, stack.template, physical, outputs={})
    skipped = _SkippedResources(stack, endpoint, region, context, resolver, deployed)
    skipped.create_all()
    _complete_environments(aws.client("lambda", endpoint, region), stack, context, resolver)
    _complete_dashboards(aws.client("cloudwatch", endpoint, region), stack, context, resolver)
    deployed.outputs = _outputs(cloudformation, stack, resolver)
    deployed.functions = _function_code(stack, context, resolver)
    return deployed


def _wait_complete(cloudformation: Any, stack_name: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        status = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
        if status == "CREATE_COMPLETE":
            return
        if status.endswith("FAILED") or "ROLLBACK" in status or time.monotonic() > deadline:
            events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"][:10]
            reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events]
            raise RuntimeError(f"stack {stack_name} ended in {status}: {reasons}")
        time.sleep(0.2)


def _stack_resources(cloudformation: Any, stack_name: str) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        resources.extend(page["StackResourceSummaries"])
    return resources


def _fallback_attributes(endpoint: str, region: str, context: StackContext) -> Any:
    def lookup(logical_id: str, attribute: str) -> str | None:
        resource_type = context.resource_type(logical_id)
        physical = context.physical_ids[logical_id]
        if resource_type == "AWS::ApiGateway::RestApi" and attribute == "RootResourceId":
            api = aws.client("apigateway", endpoint, region).get_rest_api(restApiId=physical)
            return str(api["rootResourceId"])
        if resource_type == "AWS::DynamoDB::Table" and attribute == "StreamArn":
            table = aws.client("dynamodb", endpoint, region).describe_table(TableName=physical)
            return table["Table"].get("LatestStreamArn")
        return None

    return lookup


class _SkippedResources:
    """Creates, through moto's APIs, the template resources moto's CloudFormation skips."""

    def __init__(
        self,
        stack: StackArtifact,
        endpoint: str,
        region: str,
        context: StackContext,
        resolver: Resolver,
        deployed: DeployedStack,
    ) -> None:
        self.stack = stack
        self.context = context
        self.resolver = resolver
        self.deployed = deployed
        self.apigateway = aws.client("apigateway", endpoint, region)
        self.cloudwatch = aws.client("cloudwatch", endpoint, region)
        self.sns = aws.client("sns", endpoint, region)

    def create_all(self) -> None:
        resources = self.stack.template.get("Resources", {})
        # Stages before keys and plans (plans name stages); keys before plan keys; alarms last.
        for resource_type, create in (
            ("AWS::ApiGateway::Stage", self._stage),
            ("AWS::ApiGateway::ApiKey", self._api_key),
            ("AWS::ApiGateway::UsagePlan", self._usage_plan),
            ("AWS::ApiGateway::UsagePlanKey", self._usage_plan_key),
            ("AWS::ApiGateway::GatewayResponse", self._gateway_response),
            ("AWS::SNS::Subscription", self._subscription),
            ("AWS::CloudWatch::Alarm", self._alarm),
        ):
            for logical_id, resource in resources.items():
                if resource.get("Type") != resource_type:
                    continue
                if resource.get("Condition") and not self.resolver.resolve(
                    {"Condition": resource["Condition"]}
                ):
                    continue
                properties = self.resolver.resolve(resource.get("Properties", {}))
                physical = create(logical_id, properties)
                if physical is not None:
                    self.context.physical_ids[logical_id] = physical

    def _stage(self, logical_id: str, props: dict[str, Any]) -> str:
        api_id = props["RestApiId"]
        deployment_id = props.get("DeploymentId") or ""
        if not deployment_id:
            deployments = self.apigateway.get_deployments(restApiId=api_id)["items"]
            deployment_id = deployments[-1]["id"]
        stage_name = props.get("StageName") or logical_id
        self.apigateway.create_stage(
            restApiId=api_id,
            stageName=stage_name,
            deploymentId=deployment_id,
            variables=props.get("Variables") or {},
            description=props.get("Description") or "",
        )
        return str(stage_name)  # Ref of a stage is its name

    def _api_key(self, logical_id: str, props: dict[str, Any]) -> str:
        name = props.get("Name") or f"{self.stack.stack_name}-{logical_id}"
        # API Gateway generates 40-character alphanumeric values when none is given.
        value = props.get("Value") or "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(40)
        )
        created = self.apigateway.create_api_key(
            name=name,
            value=value,
            enabled=bool(props.get("Enabled", True)),
            description=props.get("Description") or "",
        )
        self.deployed.api_keys[logical_id] = {"id": created["id"], "name": name, "value": value}
        return str(created["id"])

    def _usage_plan(self, logical_id: str, props: dict[str, Any]) -> str:
        kwargs: dict[str, Any] = {
            "name": props.get("UsagePlanName") or f"{self.stack.stack_name}-{logical_id}"
        }
        if props.get("Description"):
            kwargs["description"] = props["Description"]
        stages = []
        for stage in props.get("ApiStages") or []:
            entry: dict[str, Any] = {"apiId": stage["ApiId"], "stage": stage["Stage"]}
            if stage.get("Throttle"):
                entry["throttle"] = {path: _throttle(t) for path, t in stage["Throttle"].items()}
            stages.append(entry)
        if stages:
            kwargs["apiStages"] = stages
        if props.get("Throttle"):
            kwargs["throttle"] = _throttle(props["Throttle"])
        if props.get("Quota"):
            quota = props["Quota"]
            kwargs["quota"] = {
                k: v
                for k, v in {
                    "limit": quota.get("Limit"),
                    "offset": quota.get("Offset"),
                    "period": quota.get("Period"),
                }.items()
                if v is not None
            }
        return str(self.apigateway.create_usage_plan(**kwargs)["id"])

    def _usage_plan_key(self, logical_id: str, props: dict[str, Any]) -> str:
        self.apigateway.create_usage_plan_key(
            usagePlanId=props["UsagePlanId"], keyId=props["KeyId"], keyType=props.get("KeyType", "API_KEY")
        )
        return f"{props['UsagePlanId']}:{props['KeyId']}"

    def _gateway_response(self, logical_id: str, props: dict[str, Any]) -> str:
        kwargs: dict[str, Any] = {"restApiId": props["RestApiId"], "responseType": props["ResponseType"]}
        if props.get("StatusCode"):
            kwargs["statusCode"] = str(props["StatusCode"])
        if props.get("ResponseParameters"):
            kwargs["responseParameters"] = props["ResponseParameters"]
        if props.get("ResponseTemplates"):
            kwargs["responseTemplates"] = props["ResponseTemplates"]
        self.apigateway.put_gateway_response(**kwargs)
        return f"{props['RestApiId']}:{props['ResponseType']}"

    def _subscription(self, logical_id: str, props: dict[str, Any]) -> str:
        attributes = {}
        for name in ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy"):
            if name in props:
                attributes[name] = _attribute_text(props[name])
        arn = self.sns.subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props.get("Endpoint", ""),
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return str(arn)

    def _alarm(self, logical_id: str, props: dict[str, Any]) -> str | None:
        name = props.get("AlarmName") or f"{self.stack.stack_name}-{logical_id}"
        kwargs = {k: v for k, v in props.items() if k in _ALARM_FIELDS}
        kwargs["AlarmName"] = name
        try:
            self.cloudwatch.put_metric_alarm(**kwargs)
        except Exception as error:  # an alarm moto cannot hold must not stop the deploy
            log.warning("alarm %s not created in moto: %s", name, error)
            return None
        self.deployed.alarms.append(name)
        return str(name)


_ALARM_FIELDS = {
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
}


def _attribute_text(value: Any) -> str:
    """SNS subscription attributes are strings: JSON for objects, lowercase for booleans."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _throttle(throttle: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if "RateLimit" in throttle:
        result["rateLimit"] = float(throttle["RateLimit"])
    if "BurstLimit" in throttle:
        result["burstLimit"] = int(throttle["BurstLimit"])
    return result


def _outputs(cloudformation: Any, stack: StackArtifact, resolver: Resolver) -> dict[str, str]:
    described = cloudformation.describe_stacks(StackName=stack.stack_name)["Stacks"][0].get("Outputs", [])
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in described}
    # Recompute from the template: moto renders references to resources it skipped as "None".
    for key, output in stack.template.get("Outputs", {}).items():
        try:
            value = resolver.resolve(output.get("Value"))
        except (Unresolvable, KeyError, IndexError) as error:
            log.debug("output %s kept as moto rendered it: %s", key, error)
            continue
        outputs[key] = value if isinstance(value, str) else json.dumps(value)
    return outputs


def _complete_environments(
    lambda_client: Any, stack: StackArtifact, context: StackContext, resolver: Resolver
) -> None:
    """Give functions the environment variables moto's CloudFormation dropped: those referring to
    resources it skipped (it leaves them out), resolved now that those resources exist."""
    for logical_id, resource in stack.template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        name = context.physical_ids.get(logical_id)
        variables = (resource.get("Properties", {}).get("Environment") or {}).get("Variables")
        if not name or not variables:
            continue
        wanted = {key: str(value) for key, value in resolver.resolve(variables).items()}
        config = lambda_client.get_function_configuration(FunctionName=name)
        current = (config.get("Environment") or {}).get("Variables") or {}
        if current != wanted:
            lambda_client.update_function_configuration(FunctionName=name, Environment={"Variables": wanted})


def _complete_dashboards(
    cloudwatch: Any, stack: StackArtifact, context: StackContext, resolver: Resolver
) -> None:
    """Put dashboards again with their bodies resolved from the template: moto's CloudFormation renders
    references to resources it skipped as "None" (e.g. the API stage in the API widgets' dimensions)."""
    for logical_id, resource in stack.template.get("Resources", {}).items():
        name = context.physical_ids.get(logical_id)
        if resource.get("Type") != "AWS::CloudWatch::Dashboard" or not name:
            continue
        body = resolver.resolve(resource.get("Properties", {}).get("DashboardBody"))
        if cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"] != body:
            cloudwatch.put_dashboard(DashboardName=name, DashboardBody=body)


def _function_code(
    stack: StackArtifact, context: StackContext, resolver: Resolver
) -> dict[str, FunctionCode]:
    functions = {}
    for logical_id, resource in stack.template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        name = context.physical_ids.get(logical_id)
        if not name:
            continue
        code = resolver.resolve(resource.get("Properties", {}).get("Code", {}))
        functions[name] = FunctionCode(
            function_name=name,
            logical_id=logical_id,
            bucket=code.get("S3Bucket"),
            key=code.get("S3Key"),
            zip_file=code.get("ZipFile"),
        )
    return functions
