"""The OpenAPI 3.1 document of the HTTP API, generated from code.

Paths, methods, security and parameters come from the route table (`streamrec_core.routes`, with
`streamrec_core.params`); response schemas from the msgspec types the handlers return
(`streamrec_core.responses`, `streamrec_core.http.Error`); the event schema from `streamrec_core.schema`.
What is written here is what a table cannot say: summaries, descriptions, and which statuses a route
answers with. `tools/export_openapi.py` writes the result to docs/openapi.json (committed, and a test
keeps it equal to this output).
"""

from __future__ import annotations

import copy
from typing import Any, Final

import msgspec

from streamrec_core import constants as c
from streamrec_core import http as h
from streamrec_core import params as p
from streamrec_core import responses as r
from streamrec_core import routes
from streamrec_core import schema as s

OPENAPI_VERSION: Final = "3.1.0"
API_VERSION: Final = "1.0.0"
API_KEY_SCHEME: Final = "ApiKey"
# The response bodies, by the name their schema has under components/schemas.
RESPONSE_TYPES: Final = (
    r.IngestResult,
    r.IngestRefusal,
    h.Error,
    r.Recommendations,
    r.SimilarItems,
    r.ExperimentResult,
    r.Health,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _event_schema() -> dict[str, Any]:
    schema = copy.deepcopy(s.json_schema())
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema


def _json(
    schema: dict[str, Any], description: str, *, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {h.JSON_CONTENT_TYPE: {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before resending.", "schema": {"type": "integer"}}
}
# An answer API Gateway itself may give: the shared shape (the stack's gateway responses), or API
# Gateway's default body where an answer cannot be customized.
_OWN_OR_GATEWAY = {"anyOf": [_ref("Error"), _ref("GatewayError")]}


def _common_errors(route: routes.Route) -> dict[str, Any]:
    errors: dict[str, Any] = {
        "500": _error("Internal error (a bug of ours, never caused by input)."),
        "502": _json(_OWN_OR_GATEWAY, "The function failed or timed out."),
        "503": _json(
            _ref("Error"),
            "Over capacity (the function is at its concurrency, or a dependency is busy); nothing was "
            "done: resend after Retry-After seconds.",
            headers=_RETRY_AFTER,
        ),
    }
    if route.key_role is not None:
        errors["403"] = _json(
            _OWN_OR_GATEWAY,
            "Missing or invalid x-api-key, or the key of another role (`forbidden`): the producer key only "
            "sends events, the reader key only reads.",
        )
        errors["429"] = _json(
            _OWN_OR_GATEWAY,
            "Over the usage plan's throttle or quota; retry with backoff (after Retry-After seconds when "
            "given).",
            headers=_RETRY_AFTER,
        )
    errors["400"] = _error(
        "A parameter breaks its rule (`details` names it and the rule), or the route takes no such query "
        "parameter."
    )
    return errors


def _parameter(param: p.Parameter) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": param.name,
        "in": param.location,
        "required": param.location == p.PATH,
        "description": param.description,
        "schema": dict(param.schema),
    }
    if param.many:
        document |= {"style": "form", "explode": True}
    return document


def _operations() -> dict[routes.Route, dict[str, Any]]:
    """What each route does, in words, and the statuses only it answers with."""
    return {
        routes.EVENTS: {
            "operationId": "postEvents",
            "summary": "Send one event or a batch of events",
            "description": (
                f'Body: one event, or `{{"events": [...]}}` with 1 to {c.MAX_EVENTS_PER_REQUEST} events (the '
                "deployed limit and the maximum body size come from configuration). Each event is validated "
                "against schema version 1; the answer states by index which events were stored, rejected "
                "(field and rule) or not stored after retries (resend those). An invalid event never costs "
                "its valid neighbours. Events repeating an `event_id` (within the request or from an earlier "
                "request) are counted once downstream, so resending after a timeout is safe."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    h.JSON_CONTENT_TYPE: {"schema": {"oneOf": [_ref("Event"), _ref("EventBatch")]}},
                },
            },
            "responses": {
                "200": _json(_ref("IngestResult"), "At least one event was stored; see the per-index lists."),
                "400": _json(
                    {"anyOf": [_ref("Error"), _ref("IngestRefusal")]},
                    "Malformed JSON, bad envelope, empty batch, or every event rejected "
                    "(`validation_failed`, with the per-index lists).",
                ),
                "405": _error("Method not allowed."),
                "413": _json(
                    _OWN_OR_GATEWAY,
                    "Body over the configured limit (or API Gateway's 10 MB), or more events than allowed.",
                ),
                "415": _error("Content-Type is not application/json."),
                "503": _json(
                    {"anyOf": [_ref("IngestRefusal"), _ref("Error")]},
                    "Nothing was stored: the stream refused every valid event (with the per-index lists), "
                    "or the service is over capacity; resend after Retry-After seconds, with the same "
                    "event_ids.",
                    headers=_RETRY_AFTER,
                ),
            },
        },
        routes.RECOMMENDATIONS: {
            "operationId": "getRecommendations",
            "summary": "Recommendations for a user",
            "description": (
                f"Ranked items ({c.MODEL_NAME}: co-visitation of the user's recent items, category affinity, "
                "trending fill), each with a score and a reason, the user's A/B variant and a request_id to "
                "send back as attribution."
            ),
            "responses": {"200": _json(_ref("Recommendations"), "Ranked items.")},
        },
        routes.SIMILAR: {
            "operationId": "getSimilarItems",
            "summary": "Items most often seen together with this one",
            "responses": {
                "200": _json(_ref("SimilarItems"), "Co-visited items, best first."),
                "404": _error("No events were ever seen for this item."),
            },
        },
        routes.EXPERIMENT: {
            "operationId": "getExperiment",
            "summary": "Per-variant impressions, clicks, purchases, CTR and conversion of an experiment",
            "responses": {
                "200": _json(_ref("ExperimentResult"), "Experiment results."),
                "404": _error("No such experiment."),
            },
        },
        routes.HEALTH: {
            "operationId": "getHealth",
            "summary": "Liveness (no API key)",
            "responses": {"200": _json(_ref("Health"), "The API answers.")},
        },
    }


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route, operation in _operations().items():
        operation["security"] = [{API_KEY_SCHEME: []}] if route.key_role is not None else []
        if route.params:
            operation["parameters"] = [_parameter(param) for param in route.params]
        # The route's own answers win over the common ones (ingest's 503 carries the per-index lists).
        operation["responses"] = {**_common_errors(route), **operation["responses"]}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return paths


def _response_schemas() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(RESPONSE_TYPES, ref_template="#/components/schemas/{name}")
    return components


def build_openapi() -> dict[str, Any]:
    """The whole API as an OpenAPI 3.1 document (a fresh dict on every call)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "streamrec API",
            "version": API_VERSION,
            "description": (
                "Real-time personalization: events in (`POST /v1/events`), recommendations out. Every route "
                f"but `/v1/health` needs an API key in the `{c.API_KEY_HEADER}` header: the producer key for "
                "events (it may live in web pages: it can do nothing else), the reader key for the GET "
                "routes (a server-side secret: pages get recommendations through their own backend). Any "
                "other key gets 403. Errors share one shape (`Error`), API Gateway's own included."
            ),
        },
        "servers": [
            {
                "url": "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
                "variables": {
                    "api_id": {"default": "example", "description": "REST API id (stack output RestApiId)"},
                    "region": {"default": "us-east-1"},
                    "stage": {"default": "prod", "description": "Stage name from settings (dev, prod)"},
                },
            }
        ],
        "security": [{API_KEY_SCHEME: []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                API_KEY_SCHEME: {"type": "apiKey", "in": "header", "name": c.API_KEY_HEADER},
            },
            "schemas": {
                "Event": _event_schema(),
                "EventBatch": {
                    "type": "object",
                    "required": ["events"],
                    "additionalProperties": False,
                    "properties": {
                        "events": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": c.MAX_EVENTS_PER_REQUEST,
                            "items": _ref("Event"),
                        }
                    },
                },
                "GatewayError": {
                    "type": "object",
                    "description": "API Gateway's default error body, where an answer cannot be customized "
                    "(e.g. 403 for an unknown stage).",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}},
                },
                **_response_schemas(),
            },
        },
    }
