"""Fuzz the running local API's events endpoint from its own OpenAPI document (schemathesis).

Positive and negative requests generated from docs/openapi.json (the document the code generates) go to
`POST /v1/events` of the running local pipeline, through the emulated API Gateway (API keys enforced)
to the ingest function and the stream. Every answer must be a non-5xx whose status, content type, headers
and body the document declares; schema-invalid requests must be refused with a 4xx; requests without the
API key must be refused.

Checks left out, each because the document cannot express what the API rightly does:
- positive_data_acceptance: an event valid by the JSON Schema can still be rejected by rules JSON Schema
  cannot state (the timestamp window relative to receipt time, the 8 KB serialized size, lone surrogates);
  those rejections are 400 `validation_failed` answers with field and rule, which conformance checks.
- unsupported_method (and the coverage phase's requests with undeclared methods): API Gateway answers an
  undeclared method itself (403 Missing Authentication Token), the function never sees it; that is the
  gateway's behaviour, not the document's.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method
from streamrec_core.openapi import PATH_EVENTS, build_openapi

# A batch over 500 events is refused with 413 (too_many_events), as documented, so 413 counts as refusal.
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = schemathesis.Config.from_dict(
    {
        "phases": {"coverage": {"unexpected-methods": []}},
        "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}},
    }
)
schema = schemathesis.openapi.from_dict(build_openapi(), config=CONFIG).include(
    path=PATH_EVENTS, method="POST"
)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_events_endpoint_conforms_to_its_openapi_document(case, local_pipeline) -> None:
    case.call_and_validate(
        base_url=local_pipeline.base_url,
        headers={"x-api-key": local_pipeline.api_keys["producer"]},
        excluded_checks=[positive_data_acceptance, unsupported_method],
        timeout=30,
    )
