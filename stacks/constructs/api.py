"""The public REST API: the routes of `streamrec_core.routes`, API keys with two usage plans, a traced,
logged stage.

- producers plan and key: `POST /v1/events` (web pages, apps, backends; the key is public)
- readers plan and key: the GET routes (recommendations, similar items, experiment results; a
  server-side secret)
Every route but `GET /v1/health` requires an API key. A usage plan carries throttle and quota for its
keys, but API Gateway does not tie a key to routes: any key of any plan on the stage opens every keyed
method. So each function is also told the id of the one key its routes accept (routes.KEY_ID_ENV) and
refuses any other (see streamrec_core/routes.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from streamrec_core import routes
from streamrec_core.http import GATEWAY_ERRORS, JSON_CONTENT_TYPE, gateway_response
from streamrec_core.routes import KeyRole

from stacks.settings import Settings, UsagePlanSettings

# Construct ids and descriptions per key role (ids kept from earlier versions: renaming would replace the
# deployed keys and plans, and so change the keys' values).
_PLANS: Mapping[KeyRole, tuple[str, str, str]] = {
    KeyRole.PRODUCER: ("ProducersPlan", "producers", "Event producers: POST /v1/events"),
    KeyRole.READER: ("ReadersPlan", "readers", "Readers: recommendations, similar items, experiment results"),
}
_KEYS: Mapping[KeyRole, tuple[str, str]] = {
    KeyRole.PRODUCER: ("ProducerKey", "streamrec event producers (public: may only send events)"),
    KeyRole.READER: ("ReaderKey", "streamrec recommendation readers (server-side secret)"),
}


def _usage_plan(
    api: apigw.RestApi, construct_id: str, name: str, plan: UsagePlanSettings, description: str
) -> apigw.UsagePlan:
    usage_plan = api.add_usage_plan(
        construct_id,
        name=name,
        description=description,
        throttle=apigw.ThrottleSettings(rate_limit=plan.rate_limit, burst_limit=plan.burst_limit),
        quota=apigw.QuotaSettings(limit=plan.quota_limit, period=apigw.Period[plan.quota_period]),
    )
    usage_plan.add_api_stage(stage=api.deployment_stage)
    return usage_plan


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        functions: Mapping[str, lambda_.Function],
    ) -> None:
        """`functions`: the function behind each `routes.Route.function` ("ingest", "serve")."""
        super().__init__(scope, construct_id)
        api_settings = settings.api
        stack_name = Stack.of(self).stack_name
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=settings.functions.log_retention,
            removal_policy=settings.removal_policy,
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{stack_name}-api",
            description="streamrec: events in, recommendations out",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            # Execution logs (errors only, never payloads) need the account-level CloudWatch role.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=settings.removal_policy,
            deploy_options=apigw.StageOptions(
                stage_name=api_settings.stage_name,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                throttling_rate_limit=api_settings.stage_rate_limit,
                throttling_burst_limit=api_settings.stage_burst_limit,
            ),
        )
        self.stage_name = api_settings.stage_name
        # Bodies are validated by the ingest function against schema v1 (one answer per event, which a
        # request model could not give); the validator enforces the required path parameters.
        validator = self.rest_api.add_request_validator(
            "Validator", validate_request_parameters=True, validate_request_body=True
        )
        # API Gateway's own answers in the shared error shape (streamrec_core.http.GATEWAY_ERRORS): a
        # throttled function (INTEGRATION_FAILURE) and the usage plan's throttle answer with Retry-After,
        # and browsers on the allowed origin may read them (http.gateway_cors_headers).
        for response_type in GATEWAY_ERRORS:
            status, template, headers = gateway_response(response_type, api_settings.cors_allowed_origins)
            self.rest_api.add_gateway_response(
                f"{response_type.title().replace('_', '')}Response",
                type=apigw.ResponseType.of(response_type),
                status_code=None if status is None else str(int(status)),
                templates={JSON_CONTENT_TYPE: template},
                response_headers={name: f"'{value}'" for name, value in headers.items()} or None,
            )
        integrations = {
            name: apigw.LambdaIntegration(fn, proxy=True, allow_test_invoke=False)
            for name, fn in functions.items()
        }
        self.methods: dict[tuple[str, str], apigw.Method] = {}
        for route in routes.ROUTES:
            resource = self.rest_api.root.resource_for_path(route.path)
            params = {f"method.request.path.{name}": True for name in route.path_parameters}
            self.methods[(route.method, route.path)] = resource.add_method(
                route.method,
                integrations[route.function],
                # Load balancers and uptime checks carry no key (routes.HEALTH).
                api_key_required=route.key_role is not None,
                request_parameters=params or None,
                request_validator=validator if params else None,
            )
            # CORS preflights go to the route's own function, which answers OPTIONS with the allowed
            # origins (constants.ENV_CORS_ALLOWED_ORIGINS). Not CDK's MOCK preflight: moto's
            # CloudFormation rejects a MOCK integration (it requires Uri), and a proxy preflight runs
            # identically in the local runtime. Browsers never send an API key with a preflight; a keyless
            # GET (health) is a simple request and needs none.
            if api_settings.cors_allowed_origins and route.key_role is not None:
                self.methods[("OPTIONS", route.path)] = resource.add_method(
                    "OPTIONS", integrations[route.function]
                )

        # Keys are created without stages (apigw.ApiKey, not RestApi.add_api_key): stage keys would make
        # each key depend on the deployment stage, which depends on the methods, which depend on the
        # functions, whose environment names the key ids below: a dependency cycle. A usage plan is what
        # opens a stage to a key anyway (stage keys are the pre-usage-plan mechanism).
        self.usage_plans: dict[KeyRole, apigw.UsagePlan] = {}
        self.keys: dict[KeyRole, apigw.ApiKey] = {}
        plan_settings = {KeyRole.PRODUCER: api_settings.producers, KeyRole.READER: api_settings.readers}
        for role in KeyRole:
            plan_id, plan_name, plan_description = _PLANS[role]
            self.usage_plans[role] = _usage_plan(
                self.rest_api, plan_id, f"{stack_name}-{plan_name}", plan_settings[role], plan_description
            )
            key_id, key_description = _KEYS[role]
            self.keys[role] = apigw.ApiKey(self.rest_api, key_id, description=key_description)
            self.usage_plans[role].add_api_key(self.keys[role])
        for name, fn in functions.items():
            for role in routes.key_roles_of(name):
                fn.add_environment(routes.KEY_ID_ENV[role], self.keys[role].key_id)
