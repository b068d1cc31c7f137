"""Resolve CloudFormation intrinsic functions of a deployed template against what moto created.

The deploy step needs this for the resources moto's CloudFormation skips (API stages, keys, usage plans,
alarms) and for stack outputs that refer to them: their properties hold ``Ref``/``Fn::GetAtt``/
``Fn::Join``/``Fn::Sub`` expressions that only make sense once the other resources have physical ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local_emulator import aws


class Unresolvable(ValueError):
    """An expression refers to something the emulator cannot know (e.g. a skipped resource's attribute)."""


_NO_VALUE = object()


@dataclass
class StackContext:
    """What is known about a deployed stack: its template and each resource's type and physical id."""

    stack_name: str
    stack_id: str
    template: dict[str, Any]
    physical_ids: dict[str, str] = field(default_factory=dict)
    region: str = aws.REGION
    account: str = aws.ACCOUNT_ID
    # Extra attribute lookups, e.g. {("Api123", "RootResourceId"): "abc"}.
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def resource_type(self, logical_id: str) -> str:
        """The CloudFormation type of a resource of the template."""
        return self.template.get("Resources", {}).get(logical_id, {}).get("Type", "")


class Resolver:
    """Evaluates intrinsic functions of one template against a `StackContext`."""

    def __init__(self, context: StackContext, fallback: Callable[[str, str], str] | None = None) -> None:
        self.ctx = context
        self._fallback = fallback

    def resolve(self, value: Any) -> Any:
        """Return `value` with every intrinsic function evaluated (AWS::NoValue entries removed)."""
        result = self._resolve(value)
        return None if result is _NO_VALUE else result

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = self._FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
        resolved = {k: self._resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    # --- functions ---------------------------------------------------------------------------------
    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.ctx.region,
            "AWS::AccountId": self.ctx.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.ctx.stack_name,
            "AWS::StackId": self.ctx.stack_id,
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        parameters = self.ctx.template.get("Parameters", {})
        if name in parameters:
            return parameters[name].get("Default", "")
        if name in self.ctx.physical_ids:
            return self.ctx.physical_ids[name]
        raise Unresolvable(f"Ref {name}: no physical id known")

    def _get_att(self, arg: Any) -> str:
        if isinstance(arg, str):
            logical_id, attribute = arg.split(".", 1)
        else:
            logical_id, attribute = arg[0], self._resolve(arg[1])
        if (logical_id, attribute) in self.ctx.attributes:
            return self.ctx.attributes[(logical_id, attribute)]
        if logical_id not in self.ctx.physical_ids:
            raise Unresolvable(f"GetAtt {logical_id}.{attribute}: no physical id known")
        physical = self.ctx.physical_ids[logical_id]
        value = _attribute(self.ctx, self.ctx.resource_type(logical_id), physical, attribute)
        if value is None and self._fallback is not None:
            value = self._fallback(logical_id, attribute)
        if value is None:
            raise Unresolvable(f"GetAtt {logical_id}.{attribute} is not known locally")
        return value

    def _join(self, arg: Any) -> str:
        delimiter, values = arg
        return str(delimiter).join(str(v) for v in self._resolve(values))

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            template, variables = arg, {}
        else:
            template, variables = arg[0], {k: self._resolve(v) for k, v in arg[1].items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return str(self._get_att(name))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, template)

    def _select(self, arg: Any) -> Any:
        index, values = arg
        return self._resolve(values)[int(self._resolve(index))]

    def _split(self, arg: Any) -> list[str]:
        delimiter, source = arg
        return str(self._resolve(source)).split(delimiter)

    def _if(self, arg: Any) -> Any:
        condition, when_true, when_false = arg
        return self._resolve(when_true if self._condition(condition) else when_false)

    def _condition(self, name: str) -> bool:
        return bool(self._resolve(self.ctx.template.get("Conditions", {})[name]))

    def _equals(self, arg: Any) -> bool:
        left, right = (self._resolve(v) for v in arg)
        return bool(left == right)

    def _not(self, arg: Any) -> bool:
        return not self._resolve(arg[0])

    def _and(self, arg: Any) -> bool:
        return all(self._resolve(v) for v in arg)

    def _or(self, arg: Any) -> bool:
        return any(self._resolve(v) for v in arg)

    def _get_azs(self, arg: Any) -> list[str]:
        return [f"{self.ctx.region}{zone}" for zone in "abc"]

    def _base64(self, arg: Any) -> str:
        import base64

        return base64.b64encode(str(self._resolve(arg)).encode()).decode()

    def _condition_ref(self, arg: Any) -> bool:
        return self._condition(arg)

    _FUNCTIONS: Mapping[str, Callable[[Resolver, Any], Any]] = {
        "Ref": _ref,
        "Fn::GetAtt": _get_att,
        "Fn::Join": _join,
        "Fn::Sub": _sub,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::And": _and,
        "Fn::Or": _or,
        "Fn::GetAZs": _get_azs,
        "Fn::Base64": _base64,
        "Condition": _condition_ref,
    }


def _attribute(ctx: StackContext, resource_type: str, physical: str, attribute: str) -> str | None:
    """Attributes derivable from a physical id, for the resource types the stack uses."""
    region, account = ctx.region, ctx.account
    if resource_type == "AWS::SQS::Queue":
        name = physical.rsplit("/", 1)[-1]
        return {
            "Arn": f"arn:aws:sqs:{region}:{account}:{name}",
            "QueueName": name,
            "QueueUrl": physical,
        }.get(attribute)
    if resource_type == "AWS::SNS::Topic":
        return {"TopicArn": physical, "TopicName": physical.rsplit(":", 1)[-1]}.get(attribute)
    if resource_type == "AWS::Lambda::Function":
        return {"Arn": f"arn:aws:lambda:{region}:{account}:function:{physical}"}.get(attribute)
    if resource_type == "AWS::Kinesis::Stream":
        return {"Arn": f"arn:aws:kinesis:{region}:{account}:stream/{physical}"}.get(attribute)
    if resource_type == "AWS::DynamoDB::Table":
        return {"Arn": f"arn:aws:dynamodb:{region}:{account}:table/{physical}"}.get(attribute)
    if resource_type == "AWS::IAM::Role":
        return {"Arn": f"arn:aws:iam::{account}:role/{physical}"}.get(attribute)
    if resource_type == "AWS::KMS::Key":
        return {"Arn": f"arn:aws:kms:{region}:{account}:key/{physical}", "KeyId": physical}.get(attribute)
    if resource_type == "AWS::Logs::LogGroup":
        return {"Arn": f"arn:aws:logs:{region}:{account}:log-group:{physical}:*"}.get(attribute)
    if resource_type == "AWS::ApiGateway::RestApi":
        return {"RestApiId": physical}.get(attribute)
    return None
