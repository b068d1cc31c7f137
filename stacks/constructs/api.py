"""The public REST API: routes to ingest and serve, API keys with two usage plans, a traced, logged stage.

- producers plan: for `POST /v1/events` clients (web pages, apps, backends)
- readers plan: for the GET routes (recommendations, similar items, experiment results)
Every route but `GET /v1/health` requires an API key. A usage plan carries throttle and quota for its
keys; API Gateway does not tie a key to routes, so each plan's key can technically call every keyed route.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.settings import Settings, UsagePlanSettings

# Routes, also used by tests and the dashboard; path parameters are validated as required.
EVENTS_PATH = "/v1/events"
RECOMMENDATIONS_PATH = "/v1/users/{user_id}/recommendations"
SIMILAR_PATH = "/v1/items/{item_id}/similar"
EXPERIMENT_PATH = "/v1/experiments/{experiment_id}"
HEALTH_PATH = "/v1/health"


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
        ingest: lambda_.IFunction,
        serve: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        api_settings = settings.api
        stack_name = Stack.of(self).stack_name
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=settings.functions.log_retention,
            removal_policy=settings.removal_policy,
        )
        self.api_name = f"{stack_name}-api"
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=self.api_name,
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
        ingest_integration = apigw.LambdaIntegration(ingest, proxy=True, allow_test_invoke=False)
        serve_integration = apigw.LambdaIntegration(serve, proxy=True, allow_test_invoke=False)

        def route(
            path: str, method: str, integration: apigw.Integration, *, keyed: bool = True
        ) -> apigw.Method:
            resource = self.rest_api.root.resource_for_path(path)
            params = {
                f"method.request.path.{part[1:-1]}": True for part in path.split("/") if part.startswith("{")
            }
            return resource.add_method(
                method,
                integration,
                api_key_required=keyed,
                request_parameters=params or None,
                request_validator=validator if params else None,
            )

        self.methods = {
            ("POST", EVENTS_PATH): route(EVENTS_PATH, "POST", ingest_integration),
            ("GET", RECOMMENDATIONS_PATH): route(RECOMMENDATIONS_PATH, "GET", serve_integration),
            ("GET", SIMILAR_PATH): route(SIMILAR_PATH, "GET", serve_integration),
            ("GET", EXPERIMENT_PATH): route(EXPERIMENT_PATH, "GET", serve_integration),
            # Load balancers and uptime checks carry no key.
            ("GET", HEALTH_PATH): route(HEALTH_PATH, "GET", serve_integration, keyed=False),
        }

        # CORS preflights go to the route's own function, which answers OPTIONS with the allowed origins
        # (constants.ENV_CORS_ALLOWED_ORIGINS). Not CDK's MOCK preflight: moto's CloudFormation rejects a
        # MOCK integration (it requires Uri), and a proxy preflight runs identically in the local runtime.
        if api_settings.cors_allowed_origins:
            for (_, path), method in list(self.methods.items()):
                if path != HEALTH_PATH:
                    # Browsers never send an API key with a preflight.
                    self.methods[("OPTIONS", path)] = method.resource.add_method(
                        "OPTIONS", ingest_integration if path == EVENTS_PATH else serve_integration
                    )

        self.producers_plan = _usage_plan(
            self.rest_api,
            "ProducersPlan",
            f"{stack_name}-producers",
            api_settings.producers,
            "Event producers: POST /v1/events",
        )
        self.readers_plan = _usage_plan(
            self.rest_api,
            "ReadersPlan",
            f"{stack_name}-readers",
            api_settings.readers,
            "Readers: recommendations, similar items, experiment results",
        )
        self.producer_key = self.rest_api.add_api_key("ProducerKey", description="streamrec event producers")
        self.reader_key = self.rest_api.add_api_key(
            "ReaderKey", description="streamrec recommendation readers"
        )
        self.producers_plan.add_api_key(self.producer_key)
        self.readers_plan.add_api_key(self.reader_key)
