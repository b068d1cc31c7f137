"""The published documents: docs/openapi.json and docs/event.schema.json are generated from the code."""

from __future__ import annotations

import json

import jsonschema
from openapi_spec_validator import validate as validate_openapi
from streamrec_core import constants as c
from streamrec_core.http import STATUS_BY_CODE
from streamrec_core.openapi import API_KEY_SCHEME, PATHS, build_openapi
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


def test_openapi_document_is_valid_and_covers_every_route() -> None:
    document = build_openapi()
    validate_openapi(document)
    assert set(document["paths"]) == set(PATHS)
    assert document["components"]["securitySchemes"][API_KEY_SCHEME] == {
        "type": "apiKey",
        "in": "header",
        "name": c.API_KEY_HEADER,
    }


def test_every_route_but_health_requires_the_api_key() -> None:
    document = build_openapi()
    for path, operations in document["paths"].items():
        for operation in operations.values():
            expected = [] if path == "/v1/health" else [{API_KEY_SCHEME: []}]
            assert operation["security"] == expected, path


def test_event_schema_in_openapi_is_the_published_json_schema() -> None:
    embedded = build_openapi()["components"]["schemas"]["Event"]
    published = json_schema()
    assert embedded == {k: v for k, v in published.items() if k not in ("$schema", "$id")}
    jsonschema.Draft202012Validator.check_schema(published)


def test_error_codes_in_the_document_are_the_codes_the_code_uses() -> None:
    error = build_openapi()["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["properties"]["code"]["enum"] == sorted(STATUS_BY_CODE)
