"""The bodies the API answers with, as msgspec Structs: the handlers build and encode these, and the
OpenAPI document's response schemas are generated from them (streamrec_core.openapi), so the document
cannot promise a field the code does not send. The error shape is `streamrec_core.http.Error`.

Every field here is always sent (a field that may be left out is typed `UnsetType`). Clients should
ignore fields they do not know: new ones may be added.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from streamrec_core import constants as c
from streamrec_core import schema as s
from streamrec_core.http import FAILURE_REASONS, ErrorDetail
from streamrec_core.params import K_MAX
from streamrec_core.ranking import REASONS

Count = Annotated[int, Meta(ge=0)]
Index = Annotated[int, Meta(ge=0, description="Position of the event in the request.")]
Fraction = Annotated[float, Meta(ge=0, le=1)] | None


# --- POST /v1/events ------------------------------------------------------------------------------------
class Counts(msgspec.Struct, forbid_unknown_fields=True):
    received: Count
    accepted: Annotated[int, Meta(ge=0, description="Stored, including duplicates.")]
    rejected: Count
    failed: Annotated[int, Meta(ge=0, description="Valid but not stored after retries; resend them.")]
    duplicates: Annotated[int, Meta(ge=0, description="Indexes repeating an earlier event_id.")]


class Accepted(msgspec.Struct, forbid_unknown_fields=True):
    index: Index
    event_id: Annotated[str, Meta(description="The stored event's id (assigned when absent).")]
    duplicate_of: (
        Annotated[
            int,
            Meta(
                ge=0,
                description="Set when this event repeats the event_id of an earlier index of the same "
                "request; the event was stored once, under that earlier index.",
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class Failed(Accepted, forbid_unknown_fields=True, kw_only=True):
    reason: Literal[FAILURE_REASONS]  # type: ignore[valid-type]  # a constant tuple: msgspec reads it, mypy cannot
    retryable: Literal[True]


class Violation(msgspec.Struct, forbid_unknown_fields=True):
    field: Annotated[str, Meta(description="Field within the event, e.g. user_id, properties.color")]
    rule: Annotated[str, Meta(description="The rule it broke.")]
    message: Annotated[str, Meta(description="field: rule")]

    @classmethod
    def of(cls, violation: s.Violation) -> Violation:
        return cls(violation.field, violation.rule, violation.message())


class Rejected(msgspec.Struct, forbid_unknown_fields=True):
    index: Index
    errors: Annotated[list[Violation], Meta(min_length=1)]


class IngestResult(msgspec.Struct):
    """Every index of the request appears in exactly one of accepted, rejected and failed."""

    request_id: str | None
    counts: Counts
    accepted: list[Accepted]
    rejected: list[Rejected]
    failed: list[Failed]


class IngestRefusal(IngestResult):
    """Nothing was stored: the per-index lists say why, `error` sums it up (validation_failed: every event
    was rejected; stream_unavailable: the stream refused every valid event, resend them)."""

    error: ErrorDetail


# --- GET routes -------------------------------------------------------------------------------------------
class ScoredItem(msgspec.Struct):
    item_id: str
    score: float
    reason: Literal[REASONS]  # type: ignore[valid-type]  # a constant tuple: msgspec reads it, mypy cannot


class Recommendations(msgspec.Struct):
    user_id: str
    items: Annotated[list[ScoredItem], Meta(max_length=K_MAX)]
    model: Annotated[str, Meta(description=f"Ranking model, e.g. {c.MODEL_NAME}.")]
    experiment_id: str | None
    variant: Annotated[str, Meta(description="A/B variant the user is assigned to.")]
    request_id: Annotated[
        str, Meta(description="Send it back as attribution.request_id with clicks and purchases.")
    ]
    fallback: Annotated[
        bool, Meta(description="True when the list is trending items only (cold start or no neighbours).")
    ]
    features_as_of: Annotated[
        int | None,
        Meta(
            description="Newest event time (Unix ms) in the user's features; null for a new user. Lets a "
            "caller see how fresh the ranking is."
        ),
    ]


class SimilarItems(msgspec.Struct):
    item_id: str
    items: Annotated[list[ScoredItem], Meta(max_length=K_MAX)]
    model: str


class Rate(msgspec.Struct):
    """A proportion with its 95% Wilson score interval; all null without impressions."""

    value: Fraction
    low: Fraction
    high: Fraction


class VariantResult(msgspec.Struct):
    variant: str
    weight: Annotated[
        Annotated[float, Meta(ge=0)] | None,
        Meta(description="Configured share of traffic; null if only seen in events."),
    ]
    impressions: Count
    clicks: Count
    purchases: Count
    ctr: Annotated[Rate, Meta(description="clicks / impressions, with interval")]
    conversion: Annotated[Rate, Meta(description="purchases / impressions, with interval")]


class ExperimentResult(msgspec.Struct):
    experiment_id: str
    configured: Annotated[bool, Meta(description="False when only attributed events name this experiment.")]
    confidence: Annotated[float, Meta(description="Confidence level of the intervals.")]
    variants: list[VariantResult]


class Health(msgspec.Struct):
    status: str
    model: str
