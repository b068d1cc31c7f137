"""The published documents: docs/openapi.json and docs/event.schema.json are generated from the code."""

from __future__ import annotations

import json

import jsonschema
import msgspec
from openapi_spec_validator import validate as validate_openapi
from streamrec_core import constants as c
from streamrec_core import routes
from streamrec_core.http import STATUS_BY_CODE
from streamrec_core.openapi import API_KEY_SCHEME, RESPONSE_TYPES, build_openapi
from streamrec_core.schema import json_schema

from tools import export_openapi


def test_committed_documents_equal_the_generated_ones() -> None:
    # Given the code as it is / When the documents are generated / Then the committed files match
    for path, text in export_openapi.generated().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run `make openapi`"


def test_check_mode_reports_stale_files(tmp_path, monkeypatch) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(export_openapi, "OPENAPI_PATH", stale)
    monkeypatch.setattr(export_openapi, "EVENT_SCHEMA_PATH", tmp_path / "event.schema.json")
    assert export_openapi.main(["--check"]) == 1
    assert export_openapi.main([]) == 0
    assert export_openapi.main(["--check"]) == 0
    assert json.loads(stale.read_text())["openapi"].startswith("3.")


def test_openapi_document_is_valid_and_has_exactly_the_route_tables_operations() -> None:
    document = build_openapi()
    validate_openapi(document)
    operations = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert operations == {(route.method, route.path) for route in routes.ROUTES}
    assert document["components"]["securitySchemes"][API_KEY_SCHEME] == {
        "type": "apiKey",
        "in": "header",
        "name": c.API_KEY_HEADER,
    }


def test_a_route_needs_the_api_key_in_the_document_exactly_when_the_table_gives_it_a_key_role() -> None:
    document = build_openapi()
    for route in routes.ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        expected: list[dict[str, list[str]]] = [] if route.key_role is None else [{API_KEY_SCHEME: []}]
        assert operation["security"] == expected, route.path
        assert ("403" in operation["responses"]) == (route.key_role is not None), route.path


def test_each_operation_documents_exactly_the_parameters_of_its_route() -> None:
    document = build_openapi()
    for route in routes.ROUTES:
        documented = document["paths"][route.path][route.method.lower()].get("parameters", [])
        assert [(d["name"], d["in"], d["required"]) for d in documented] == [
            (q.name, q.location, q.location == "path") for q in route.params
        ]
        assert [d["schema"] for d in documented] == [dict(q.schema) for q in route.params]


def test_response_schemas_are_those_of_the_types_the_handlers_return() -> None:
    _, generated = msgspec.json.schema_components(RESPONSE_TYPES, ref_template="#/components/schemas/{name}")
    schemas = build_openapi()["components"]["schemas"]
    assert {name: schemas[name] for name in generated} == generated


def test_event_schema_in_openapi_is_the_published_json_schema() -> None:
    embedded = build_openapi()["components"]["schemas"]["Event"]
    published = json_schema()
    assert embedded == {k: v for k, v in published.items() if k not in ("$schema", "$id")}
    jsonschema.Draft202012Validator.check_schema(published)


def test_error_codes_in_the_document_are_the_codes_the_code_uses() -> None:
    detail = build_openapi()["components"]["schemas"]["ErrorDetail"]
    assert detail["properties"]["code"]["enum"] == sorted(STATUS_BY_CODE)
