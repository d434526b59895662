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
