import re

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from registry.wsgi import application
from tests.api.conftest import create_body, issue

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def test_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn makes an unresolvable field or a name collision a failure, and
    # --validate checks the result against the OpenAPI 3 meta-schema.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    for path in ("documents/", "documents/{id}/", "annul/", "signed/", "credential/", "verify/", "institutions/"):
        assert f"/api/v1/{path}" in text or path in text
    assert "scheme: bearer" in text


def test_schema_is_served_and_documents_auth_and_errors(client):
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["partnerKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["partnerKey"]["description"],
    }
    create = schema["paths"]["/api/v1/documents/"]["post"]
    assert {"201", "400", "401", "403", "409", "422", "429"} <= set(create["responses"])
    error = create["responses"]["409"]["content"]["application/json"]
    assert error["schema"]["$ref"].endswith("/Error") and error["examples"]
    assert create["requestBody"]["content"]["application/json"]["examples"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])


def test_docs_page_loads_swagger_ui_from_local_static_files(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger" in html.lower()
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html), "the docs page must not load from a CDN"
    assets = re.findall(r"/static/([^\"'\s]+\.(?:js|css))", html)
    assert assets and all(finders.find(asset) for asset in assets)


@pytest.fixture
def api_schema():
    # Like Django's test client: the test's transaction holds the connection, so the
    # WSGI app must not close it at the end of each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _fuzz(operation, headers, mode, examples):
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def run(case):
        response = case.call()
        case.validate_response(response, checks=CHECKS)

    run()


def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(
    api_schema, issue_key, verify_key, alice_actor
):
    """Bounded: a few examples per operation and mode, in-process through the WSGI app."""
    issue(alice_actor, 1)
    issue_headers = {"Authorization": f"Bearer {issue_key[1]}"}
    verify_headers = {"Authorization": f"Bearer {verify_key[1]}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:
        headers = verify_headers if operation.path.endswith("/verify/") else issue_headers
        for mode, examples in ((GenerationMode.POSITIVE, 40), (GenerationMode.NEGATIVE, 20)):
            _fuzz(operation, headers, mode, examples)


def test_real_responses_match_the_schema(api_schema, issue_key, verify_key, alice_actor):
    """The success paths fuzzing rarely reaches (a valid body, an existing id) checked against the schema."""
    document = issue(alice_actor, 1)
    issue_headers = {"Authorization": f"Bearer {issue_key[1]}"}
    cases = [
        (api_schema["/api/v1/documents/"]["GET"].Case(), issue_headers, 200),
        (api_schema["/api/v1/documents/"]["POST"].Case(body=create_body(5)), issue_headers, 201),
        (
            api_schema["/api/v1/documents/"]["POST"].Case(body=create_body(6, number=document.number)),
            issue_headers,
            409,
        ),
        (api_schema["/api/v1/documents/{id}/"]["GET"].Case(path_parameters={"id": document.pk}), issue_headers, 200),
        (
            api_schema["/api/v1/documents/{id}/signed/"]["GET"].Case(path_parameters={"id": document.pk}),
            issue_headers,
            200,
        ),
        (
            api_schema["/api/v1/verify/"]["POST"].Case(body={"code": document.verification_code}),
            {"Authorization": f"Bearer {verify_key[1]}"},
            200,
        ),
        (api_schema["/api/v1/institutions/"]["GET"].Case(), issue_headers, 200),
        (api_schema["/api/v1/institutions/"]["GET"].Case(), {"Authorization": "Bearer bad.key"}, 401),
        (
            api_schema["/api/v1/documents/{id}/annul/"]["POST"].Case(
                path_parameters={"id": document.pk}, body={"reason": "Issued by mistake"}
            ),
            issue_headers,
            200,
        ),
    ]
    for case, headers, expected in cases:
        response = case.call(headers=headers)
        assert response.status_code == expected, (case.path, response.text)
        case.validate_response(response, checks=CHECKS, headers=headers)
