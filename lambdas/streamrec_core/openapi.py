"""The OpenAPI 3.1 document of the HTTP API, generated from code.

The event schema comes from `streamrec_core.schema`, the error shape and codes from `streamrec_core.http`,
limits and names from `streamrec_core.constants`; `tools/export_openapi.py` writes the result to
docs/openapi.json (committed, and a test keeps it equal to this output).

Response schemas of the GET routes require only what DESIGN promises and allow additional properties, so
serve can add fields without breaking clients generated from this document.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from streamrec_core import constants as c
from streamrec_core import http as h
from streamrec_core import routes
from streamrec_core import schema as s

OPENAPI_VERSION: Final = "3.1.0"
API_VERSION: Final = "1.0.0"
API_KEY_SCHEME: Final = "ApiKey"

# The paths come from the route table (streamrec_core.routes), as the CDK construct's and handlers' do.
PATH_EVENTS: Final = routes.EVENTS.path
PATH_RECOMMENDATIONS: Final = routes.RECOMMENDATIONS.path
PATH_SIMILAR: Final = routes.SIMILAR.path
PATH_EXPERIMENT: Final = routes.EXPERIMENT.path
PATH_HEALTH: Final = routes.HEALTH.path
PATHS: Final = (PATH_EVENTS, PATH_RECOMMENDATIONS, PATH_SIMILAR, PATH_EXPERIMENT, PATH_HEALTH)

# Query parameter bounds of the GET routes (serve enforces the same numbers).
K_DEFAULT: Final = 10
K_MAX: Final = 100
EXCLUDE_MAX: Final = 100
RECOMMENDATION_REASONS: Final = ("covisit", "category", "trending")

_ID_PATTERN = f"^{s.ID_CHARSET}+$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _id_schema(max_length: int, description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": _ID_PATTERN,
        "description": description,
    }


def _event_schema() -> dict[str, Any]:
    schema = copy.deepcopy(s.json_schema())
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "The one error shape of every route (and of API Gateway's own errors).",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable token to branch on.",
                        "enum": sorted(h.STATUS_BY_CODE),
                    },
                    "message": {"type": "string", "description": "For people."},
                    "request_id": {"type": ["string", "null"], "description": "API Gateway request id."},
                    "details": {"type": "array", "items": {"type": "object"}},
                },
            }
        },
    }


def _violation_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["field", "rule", "message"],
        "additionalProperties": False,
        "properties": {
            "field": {
                "type": "string",
                "description": "Field within the event, e.g. user_id, properties.color",
            },
            "rule": {"type": "string", "description": "The rule it broke."},
            "message": {"type": "string", "description": "field: rule"},
        },
    }


def _ingest_result_schema() -> dict[str, Any]:
    index = {"type": "integer", "minimum": 0, "description": "Position of the event in the request."}
    event_id = {"type": "string", "description": "The stored event's id (assigned when absent)."}
    duplicate_of = {
        "type": "integer",
        "minimum": 0,
        "description": "Set when this event repeats the event_id of an earlier index of the same request; "
        "the event was stored once, under that earlier index.",
    }
    count = {"type": "integer", "minimum": 0}
    return {
        "type": "object",
        "description": "Every index of the request appears in exactly one of accepted, rejected and failed.",
        "required": ["request_id", "counts", "accepted", "rejected", "failed"],
        "properties": {
            "request_id": {"type": ["string", "null"]},
            "counts": {
                "type": "object",
                "required": ["received", "accepted", "rejected", "failed", "duplicates"],
                "additionalProperties": False,
                "properties": {
                    "received": count,
                    "accepted": {**count, "description": "Stored, including duplicates."},
                    "rejected": count,
                    "failed": {**count, "description": "Valid but not stored after retries; resend them."},
                    "duplicates": {**count, "description": "Indexes repeating an earlier event_id."},
                },
            },
            "accepted": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "event_id"],
                    "additionalProperties": False,
                    "properties": {"index": index, "event_id": event_id, "duplicate_of": duplicate_of},
                },
            },
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "errors"],
                    "additionalProperties": False,
                    "properties": {
                        "index": index,
                        "errors": {"type": "array", "minItems": 1, "items": _ref("Violation")},
                    },
                },
            },
            "failed": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "event_id", "reason", "retryable"],
                    "additionalProperties": False,
                    "properties": {
                        "index": index,
                        "event_id": event_id,
                        "reason": {"type": "string", "enum": list(h.FAILURE_REASONS)},
                        "retryable": {"const": True},
                        "duplicate_of": duplicate_of,
                    },
                },
            },
        },
    }


def _recommendations_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["user_id", "items", "variant", "request_id", "model"],
        "properties": {
            "user_id": {"type": "string"},
            "items": {
                "type": "array",
                "maxItems": K_MAX,
                "items": {
                    "type": "object",
                    "required": ["item_id", "score", "reason"],
                    "properties": {
                        "item_id": {"type": "string"},
                        "score": {"type": "number"},
                        "reason": {"type": "string", "enum": list(RECOMMENDATION_REASONS)},
                    },
                },
            },
            "variant": {"type": "string", "description": "A/B variant the user is assigned to."},
            "experiment_id": {"type": ["string", "null"]},
            "request_id": {
                "type": "string",
                "description": "Send it back as attribution.request_id with clicks and purchases.",
            },
            "model": {"type": "string", "description": f"Ranking model, e.g. {c.MODEL_NAME}."},
            "fallback": {
                "type": "boolean",
                "description": "True when the list is trending items only (cold start or no neighbours).",
            },
            "features_as_of": {
                "type": ["integer", "null"],
                "description": "Newest event time (Unix ms) in the user's features; null for a new user. "
                "Lets a caller see how fresh the ranking is.",
            },
        },
    }


def _similar_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["item_id", "items"],
        "properties": {
            "item_id": {"type": "string"},
            "items": {
                "type": "array",
                "maxItems": K_MAX,
                "items": {
                    "type": "object",
                    "required": ["item_id", "score"],
                    "properties": {"item_id": {"type": "string"}, "score": {"type": "number"}},
                },
            },
        },
    }


def _experiment_schema() -> dict[str, Any]:
    fraction = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
    rate = {
        "type": "object",
        "description": "A proportion with its 95% Wilson score interval; all null without impressions.",
        "required": ["value", "low", "high"],
        "properties": {"value": fraction, "low": fraction, "high": fraction},
    }
    count = {"type": "integer", "minimum": 0}
    return {
        "type": "object",
        "required": ["experiment_id", "variants"],
        "properties": {
            "experiment_id": {"type": "string"},
            "configured": {
                "type": "boolean",
                "description": "False when only attributed events name this experiment.",
            },
            "confidence": {"type": "number", "description": "Confidence level of the intervals."},
            "variants": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["variant"],
                    "properties": {
                        "variant": {"type": "string"},
                        "weight": {
                            "type": ["number", "null"],
                            "minimum": 0,
                            "description": "Configured share of traffic; null if only seen in events.",
                        },
                        "impressions": count,
                        "clicks": count,
                        "purchases": count,
                        "ctr": {**rate, "description": "clicks / impressions, with interval"},
                        "conversion": {**rate, "description": "purchases / impressions, with interval"},
                    },
                },
            },
        },
    }


def _health_schema() -> dict[str, Any]:
    return {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}


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


def _gateway_error(description: str) -> dict[str, Any]:
    """An error API Gateway itself answers: the shared shape where the stack installs gateway responses,
    API Gateway's default `{"message": ...}` otherwise."""
    return _json({"anyOf": [_ref("Error"), _ref("GatewayError")]}, description)


def _common_errors(*, keyed: bool = True) -> dict[str, Any]:
    errors: dict[str, Any] = {
        "500": _error("Internal error (a bug of ours, never caused by input)."),
        "502": _gateway_error("The function failed or timed out."),
        "503": _json(
            _ref("Error"),
            "Over capacity (the function is at its concurrency, or a dependency is busy); nothing was "
            "done: resend after Retry-After seconds.",
            headers=_RETRY_AFTER,
        ),
    }
    if keyed:
        errors["403"] = _json(
            {"anyOf": [_ref("Error"), _ref("GatewayError")]},
            "Missing or invalid x-api-key, or the key of another role (`forbidden`): the producer key only "
            "sends events, the reader key only reads.",
        )
        errors["429"] = _json(
            {"anyOf": [_ref("Error"), _ref("GatewayError")]},
            "Over the usage plan's throttle or quota; retry with backoff (after Retry-After seconds when "
            "given).",
            headers=_RETRY_AFTER,
        )
    return errors


def _path_id(name: str, max_length: int, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _id_schema(max_length, description)}


def _k_parameter() -> dict[str, Any]:
    return {
        "name": "k",
        "in": "query",
        "required": False,
        "description": "How many items to return.",
        "schema": {"type": "integer", "minimum": 1, "maximum": K_MAX, "default": K_DEFAULT},
    }


def build_openapi() -> dict[str, Any]:
    """The whole API as an OpenAPI 3.1 document (a fresh dict on every call)."""
    events_post = {
        "operationId": "postEvents",
        "summary": "Send one event or a batch of events",
        "description": (
            f'Body: one event, or `{{"events": [...]}}` with 1 to {c.MAX_EVENTS_PER_REQUEST} events (the '
            "deployed limit and the maximum body size come from configuration). Each event is validated "
            "against schema version 1; the answer states by index which events were stored, rejected (field "
            "and rule) or not stored after retries (resend those). An invalid event never costs its valid "
            "neighbours. Events repeating an `event_id` (within the request or from an earlier request) are "
            "counted once downstream, so resending after a timeout is safe."
        ),
        "security": [{API_KEY_SCHEME: []}],
        "requestBody": {
            "required": True,
            "content": {
                h.JSON_CONTENT_TYPE: {"schema": {"oneOf": [_ref("Event"), _ref("EventBatch")]}},
            },
        },
        "responses": {
            "200": _json(_ref("IngestResult"), "At least one event was stored; see the per-index lists."),
            "400": _json(
                {"anyOf": [_ref("Error"), {"allOf": [_ref("IngestResult"), _ref("Error")]}]},
                "Malformed JSON, bad envelope, empty batch, or every event rejected (`validation_failed`, "
                "with the per-index lists).",
            ),
            "405": _error("Method not allowed."),
            "413": _json(
                {"anyOf": [_ref("Error"), _ref("GatewayError")]},
                "Body over the configured limit (or API Gateway's 10 MB), or more events than allowed.",
            ),
            "415": _error("Content-Type is not application/json."),
            **_common_errors(),
            "503": _json(
                {"anyOf": [{"allOf": [_ref("IngestResult"), _ref("Error")]}, _ref("Error")]},
                "Nothing was stored: the stream refused every valid event (with the per-index lists), or "
                "the service is over capacity; resend after Retry-After seconds, with the same event_ids.",
                headers=_RETRY_AFTER,
            ),
        },
    }
    recommendations_get = {
        "operationId": "getRecommendations",
        "summary": "Recommendations for a user",
        "description": (
            f"Ranked items ({c.MODEL_NAME}: co-visitation of the user's recent items, category affinity, "
            "trending fill), each with a score and a reason, the user's A/B variant and a request_id to send "
            "back as attribution."
        ),
        "security": [{API_KEY_SCHEME: []}],
        "parameters": [
            _path_id("user_id", s.USER_ID_MAX, "The user."),
            _k_parameter(),
            {
                "name": "category",
                "in": "query",
                "required": False,
                "description": "Only items of this category (empty: no filter).",
                "schema": {"type": "string", "maxLength": 128},
            },
            {
                "name": "exclude",
                "in": "query",
                "required": False,
                "description": "Item ids not to return (repeat the parameter or separate with commas).",
                "style": "form",
                "explode": True,
                "schema": {"type": "array", "maxItems": EXCLUDE_MAX, "items": {"type": "string"}},
            },
        ],
        "responses": {
            "200": _json(_ref("Recommendations"), "Ranked items."),
            "400": _error("Invalid parameter."),
            **_common_errors(),
        },
    }
    similar_get = {
        "operationId": "getSimilarItems",
        "summary": "Items most often seen together with this one",
        "security": [{API_KEY_SCHEME: []}],
        "parameters": [_path_id("item_id", s.ITEM_ID_MAX, "The item."), _k_parameter()],
        "responses": {
            "200": _json(_ref("SimilarItems"), "Co-visited items, best first."),
            "400": _error("Invalid parameter."),
            "404": _error("No events were ever seen for this item."),
            **_common_errors(),
        },
    }
    experiment_get = {
        "operationId": "getExperiment",
        "summary": "Per-variant impressions, clicks, purchases, CTR and conversion of an experiment",
        "security": [{API_KEY_SCHEME: []}],
        "parameters": [_path_id("experiment_id", s.VARIANT_MAX, "The experiment.")],
        "responses": {
            "200": _json(_ref("Experiment"), "Experiment results."),
            "400": _error("Invalid parameter."),
            "404": _error("No such experiment."),
            **_common_errors(),
        },
    }
    health_get = {
        "operationId": "getHealth",
        "summary": "Liveness (no API key)",
        "security": [],
        "responses": {
            "200": _json(_ref("Health"), "The API answers."),
            **_common_errors(keyed=False),
        },
    }
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
                "other key gets 403. Errors share one shape (`Error`)."
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
        "paths": {
            PATH_EVENTS: {"post": events_post},
            PATH_RECOMMENDATIONS: {"get": recommendations_get},
            PATH_SIMILAR: {"get": similar_get},
            PATH_EXPERIMENT: {"get": experiment_get},
            PATH_HEALTH: {"get": health_get},
        },
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
                "IngestResult": _ingest_result_schema(),
                "Violation": _violation_schema(),
                "Error": _error_schema(),
                "GatewayError": {
                    "type": "object",
                    "description": "API Gateway's default error body (403, 429, 502) where not customized.",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}},
                },
                "Recommendations": _recommendations_schema(),
                "SimilarItems": _similar_schema(),
                "Experiment": _experiment_schema(),
                "Health": _health_schema(),
            },
        },
    }
