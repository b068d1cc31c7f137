"""Fuzz the running local API from its own OpenAPI document (schemathesis).

Positive and negative requests generated from the document the code generates (docs/openapi.json) go
through the emulated API Gateway (API keys enforced) to the functions: `POST /v1/events` with the
producer key, the GET routes with the reader key. Every answer must be a non-5xx whose status, content
type, headers and body the document declares; schema-invalid requests must be refused with a 4xx;
requests without the API key must be refused.

Checks left out, each because the document cannot express what the API rightly does:
- positive_data_acceptance: an event valid by the JSON Schema can still be rejected by rules JSON Schema
  cannot state (the timestamp window relative to receipt time, the 8 KB serialized size, lone surrogates),
  and a schema-valid id can name an item or experiment that does not exist (404); those answers are
  checked for conformance like any other.
- unsupported_method (and the coverage phase's requests with undeclared methods): API Gateway answers an
  undeclared method itself (403 Missing Authentication Token) and the function never sees it.

The events these tests send land in the shared pipeline under short generated ids ("0", "a", ...); other
e2e tests use unique ids and must not expect global trending lists to be free of them.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method
from streamrec_core import routes
from streamrec_core.constants import API_KEY_HEADER
from streamrec_core.openapi import build_openapi

# A batch over the event limit is refused with 413 (too_many_events), as documented: a refusal too.
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = schemathesis.Config.from_dict(
    {
        "phases": {"coverage": {"unexpected-methods": []}},
        "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}},
    }
)
SCHEMA = schemathesis.openapi.from_dict(build_openapi(), config=CONFIG)
EXCLUDED_CHECKS = [positive_data_acceptance, unsupported_method]
FUZZ_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

events_schema = SCHEMA.include(path=routes.EVENTS.path, method=routes.EVENTS.method)
reads_schema = SCHEMA.include(method="GET")


def with_key(case, key: str) -> dict[str, str]:
    """The real key, unless the case probes the key itself: schemathesis generated one (a made-up key must
    be refused) or dropped it on purpose (a negative case of the headers: a missing key must be refused).
    Adding the real key to either made the API answer 200 and a check fail, now and then."""
    generated = {name.lower() for name in (case.headers or {})}
    probes_headers = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    return {} if API_KEY_HEADER in generated or probes_headers else {API_KEY_HEADER: key}


@events_schema.parametrize()
@FUZZ_SETTINGS
def test_events_endpoint_conforms_to_its_openapi_document(case, local_pipeline) -> None:
    case.call_and_validate(
        base_url=local_pipeline.base_url,
        headers=with_key(case, local_pipeline.api_keys["producer"]),
        excluded_checks=EXCLUDED_CHECKS,
        timeout=30,
    )


@reads_schema.parametrize()
@FUZZ_SETTINGS
def test_read_routes_conform_to_the_openapi_document(case, local_pipeline) -> None:
    case.call_and_validate(
        base_url=local_pipeline.base_url,
        headers=with_key(case, local_pipeline.api_keys["reader"]),
        excluded_checks=EXCLUDED_CHECKS,
        timeout=30,
    )
