"""StreamrecStack: the whole pipeline for one settings profile, assembled from one construct per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct
from streamrec_core import constants as c
from streamrec_core import routes
from streamrec_core.routes import KeyRole

from stacks.constructs.api import Api
from stacks.constructs.branches import AggregateBranches
from stacks.constructs.functions import FunctionDependencies, StreamrecFunction
from stacks.constructs.monitoring import Monitored, Monitoring
from stacks.constructs.processing import Processing
from stacks.constructs.stream import EventStream
from stacks.constructs.tables import FeatureTables
from stacks.settings import Settings


class StreamrecStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings

        self.events = EventStream(
            self, "Events", settings=settings.stream, removal_policy=settings.removal_policy
        )
        self.tables = FeatureTables(self, "Tables", removal_policy=settings.removal_policy)
        stream, users, items = self.events.stream, self.tables.users, self.tables.items

        self.function_dependencies = FunctionDependencies(self, "Dependencies", settings=settings)
        deps = self.function_dependencies

        self.processing = Processing(
            self, "Processing", settings=settings, stream=stream, users=users, items=items, dependencies=deps
        )
        self.branches = AggregateBranches(
            self,
            "Branches",
            settings=settings,
            stream=stream,
            users=users,
            items=items,
            dependencies=deps,
        )

        ing = settings.ingest
        cors = ",".join(settings.api.cors_allowed_origins)
        self.ingest = StreamrecFunction(
            self,
            "Ingest",
            folder="ingest",
            service=c.INGEST_SERVICE,
            sizing=settings.functions.ingest,
            settings=settings,
            dependencies=deps,
            description="POST /v1/events -> validate -> PutRecords",
            environment={
                c.ENV_STREAM_NAME: stream.stream_name,
                c.ENV_MAX_EVENT_AGE_SECONDS: str(ing.max_event_age_seconds),
                c.ENV_MAX_FUTURE_SKEW_SECONDS: str(ing.max_future_skew_seconds),
                c.ENV_MAX_BODY_BYTES: str(ing.max_body_bytes),
                c.ENV_MAX_EVENTS_PER_REQUEST: str(ing.max_events_per_request),
                c.ENV_PUT_RETRY_BUDGET_SECONDS: str(ing.put_retry_budget_seconds),
                c.ENV_CORS_ALLOWED_ORIGINS: cors,
            },
        )
        stream.grant_write(self.ingest.function)

        self.serve = StreamrecFunction(
            self,
            "Serve",
            folder="serve",
            service=c.SERVE_SERVICE,
            sizing=settings.functions.serve,
            settings=settings,
            dependencies=deps,
            description="GET recommendations / similar items / experiments / health",
            environment={
                c.ENV_USERS_TABLE: users.table_name,
                c.ENV_ITEMS_TABLE: items.table_name,
                c.ENV_EXPERIMENTS: settings.experiments_json(),
                c.ENV_CORS_ALLOWED_ORIGINS: cors,
            },
        )
        users.grant_read_data(self.serve.function)
        items.grant_read_data(self.serve.function)

        self.api = Api(
            self,
            "Api",
            settings=settings,
            functions={routes.INGEST: self.ingest.function, routes.SERVE: self.serve.function},
        )

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            watched=Monitored(
                stream=stream,
                process=self.processing.process.function,
                aggregate=self.branches.items.function,
                experiments=self.branches.experiments.function,
                ingest=self.ingest.function,
                serve=self.serve.function,
                dead_letter_queue=self.processing.dead_letter_queue,
                on_failure_queue=self.processing.on_failure_queue,
                users=users,
                items=items,
                api_stage=self.api.rest_api.deployment_stage,
            ),
        )

        rest_api = self.api.rest_api
        outputs = {
            c.OUTPUT_API_URL: rest_api.url,
            c.OUTPUT_REST_API_ID: rest_api.rest_api_id,
            c.OUTPUT_API_STAGE: self.api.stage_name,
            c.OUTPUT_STREAM_NAME: stream.stream_name,
            c.OUTPUT_USERS_TABLE: users.table_name,
            c.OUTPUT_ITEMS_TABLE: items.table_name,
            c.OUTPUT_DLQ_URL: self.processing.dead_letter_queue.queue_url,
            c.OUTPUT_ON_FAILURE_QUEUE_URL: self.processing.on_failure_queue.queue_url,
            c.OUTPUT_ALARM_TOPIC_ARN: self.monitoring.topic.topic_arn,
            c.OUTPUT_PRODUCER_API_KEY_ID: self.api.keys[KeyRole.PRODUCER].key_id,
            c.OUTPUT_READER_API_KEY_ID: self.api.keys[KeyRole.READER].key_id,
            c.OUTPUT_DASHBOARD_NAME: self.monitoring.dashboard.dashboard_name,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
