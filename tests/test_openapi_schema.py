import pytest
import yaml
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_the_schema_is_served_and_is_a_valid_openapi_document(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    validate(document)
    paths = document["paths"]
    for path in (
        "/api/v1/requests/",
        "/api/v1/requests/{reference}/verify/",
        "/api/v1/staff/requests/",
        "/api/v1/staff/requests/{reference}/",
        "/api/v1/staff/requests/{reference}/approve/",
        "/api/v1/staff/requests/{reference}/reject/",
        "/api/v1/staff/requests/{reference}/extend/",
    ):
        assert path in paths, path


def test_the_schema_generates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def _schema(client) -> dict:
    return yaml.safe_load(client.get("/api/schema/").content)


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method.upper(), operation


def _error_ref(response) -> str:
    return response["content"]["application/json"]["schema"]["$ref"]


def test_there_is_one_error_component_with_code_message_and_field(client):
    schemas = _schema(client)["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    detail = schemas["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "field"}
    assert detail["properties"]["field"]["nullable"] is True
    assert {"attempts_left", "fields"} <= set(detail["properties"])


def test_every_operation_documents_the_errors_it_can_give(client):
    document = _schema(client)
    operations = list(_operations(document))
    assert len(operations) >= 20
    for path, method, operation in operations:
        responses = operation["responses"]
        where = f"{method} {path}"
        expected = {"400", "503"}
        if path.startswith("/api/v1/staff/"):
            expected |= {"401", "403"}
        else:
            expected.add("429")
        if "{" in path:
            expected.add("404")
            if method != "GET":
                expected.add("409")
        if method in ("POST", "PUT", "PATCH"):
            expected |= {"413", "415"}
        assert expected <= set(responses), (where, sorted(responses))
        for status in expected:
            assert _error_ref(responses[status]) == "#/components/schemas/Error", (where, status)
            assert responses[status]["description"], (where, status)
        for status in ("429", "503"):
            if status in responses:
                assert "Retry-After" in responses[status]["headers"], (where, status)
        assert "500" not in responses, where


def test_real_error_answers_match_the_documented_error_schema(client, staff_api, public_api):
    from openapi_schema_validator import OAS30Validator

    document = _schema(client)
    schemas = document["components"]["schemas"]
    validator = OAS30Validator(
        {"$ref": "#/components/schemas/Error", "components": {"schemas": schemas}}
    )
    answers = [
        client.get("/api/v1/staff/requests/"),
        staff_api.get("/api/v1/staff/requests/nope/"),
        staff_api.get("/api/v1/staff/requests/?status=sleeping"),
        public_api.post("/api/v1/requests/", {"kind": "access", "identity": {}}, format="json"),
        public_api.post("/api/v1/requests/", {"kind": 1, "identity": 2}, format="json"),
        public_api.post("/api/v1/requests/nope/verify/", {"code": "123456"}, format="json"),
        public_api.generic("POST", "/api/v1/requests/", "x", content_type="text/plain"),
    ]
    assert [a.status_code for a in answers] == [401, 404, 400, 400, 400, 404, 415]
    for answer in answers:
        validator.validate(answer.json())
