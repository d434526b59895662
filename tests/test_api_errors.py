"""Every API error has one shape, keeps its message, and no body is too big or deep for a 500."""

import json

import pytest
from django.db import OperationalError
from rest_framework.exceptions import Throttled

from requests.api.errors import exception_handler
from requests.models import DataRequest
from requests.services import lifecycle
from tests.conftest import code_from

pytestmark = pytest.mark.django_db

FILE_URL = "/api/v1/requests/"


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "field"} <= set(error), error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error


def _nested(depth: int) -> dict:
    value: object = "x"
    for _ in range(depth - 1):
        value = [value]
    return {"kind": "access", "identity": {"email": "ada@example.com"}, "extra": value}


def test_a_wrong_code_keeps_its_message_the_field_and_the_attempts_left(
    public_api, file_request, mailoutbox
):
    reference = file_request()
    wrong = "000000" if code_from(mailoutbox[0]) != "000000" else "111111"
    response = public_api.post(f"/api/v1/requests/{reference}/verify/", {"code": wrong}, "json")
    assert response.status_code == 400
    assert _error(response) == {
        "code": "wrong_code",
        "message": "That code is not right. 4 attempt(s) left.",
        "field": "code",
        "attempts_left": 4,
    }


def test_a_field_error_names_the_field_with_a_dotted_path(public_api):
    response = public_api.post(
        FILE_URL, {"kind": "access", "identity": {"email": "a@b.com", "phone": "x"}}, "json"
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["field"] == "identity.phone"
    assert error["code"] == "invalid"


def test_several_wrong_fields_are_all_listed_under_fields(staff_api):
    request = lifecycle.request_file(kind="access", identity={"email": "ada@example.com"})
    response = staff_api.post(
        f"/api/v1/staff/requests/{request.reference}/extend/", {"months": "many"}, "json"
    )
    assert response.status_code == 400
    error = _error(response)
    assert set(error["fields"]) == {"months", "reason"}
    assert error["field"] in error["fields"]
    assert error["message"] == error["fields"][error["field"]][0]


def test_a_body_that_is_not_json_is_a_parse_error(public_api):
    response = public_api.generic("POST", FILE_URL, "{nope", content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == "parse_error"


def test_no_token_is_a_401_with_the_scheme_to_use(client):
    response = client.get("/api/v1/staff/requests/")
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_a_401(client):
    response = client.get("/api/v1/staff/requests/", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401
    assert _error(response)["code"] == "authentication_failed"


def test_a_token_of_someone_who_is_not_staff_is_a_403(django_user_model):
    from rest_framework.test import APIClient

    from requests.services.tokens import token_create

    user = django_user_model.objects.create_user(username="visitor", password="x" * 20)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, actor='system')}")
    response = client.get("/api/v1/staff/requests/")
    assert response.status_code == 403
    assert _error(response)["code"] == "permission_denied"


def test_an_unknown_reference_is_a_404_in_the_error_shape(staff_api, public_api):
    response = staff_api.get("/api/v1/staff/requests/nope/")
    assert response.status_code == 404
    assert _error(response) == {"code": "not_found", "message": "Not found.", "field": None}
    verify = public_api.post("/api/v1/requests/nope/verify/", {"code": "123456"}, "json")
    assert verify.status_code == 404
    assert _error(verify)["code"] == "not_found"


def test_an_unknown_api_address_is_a_404_in_the_error_shape(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert b"Page not found" in page.content


def test_a_method_the_endpoint_does_not_have_is_a_405(public_api):
    response = public_api.get(FILE_URL)
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


def test_a_decision_not_allowed_in_the_request_state_is_a_409(staff_api):
    request = lifecycle.request_file(kind="access", identity={"email": "ada@example.com"})
    response = staff_api.post(f"/api/v1/staff/requests/{request.reference}/approve/")
    assert response.status_code == 409
    assert _error(response)["code"] == "transition_not_allowed"


def test_a_body_in_a_type_the_api_does_not_read_is_a_415(public_api):
    response = public_api.generic("POST", FILE_URL, "kind=access", content_type="text/plain")
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"


def test_asking_for_codes_too_fast_is_a_429_with_retry_after(public_api, file_request, settings):
    from datetime import timedelta

    settings.PORTAL_RESEND_INTERVAL = timedelta(seconds=60)
    reference = file_request()
    response = public_api.post(f"/api/v1/requests/{reference}/resend/")
    assert response.status_code == 429
    assert _error(response)["code"] == "rate_limited"
    assert 0 < int(response["Retry-After"]) <= 61


def test_a_throttled_client_gets_the_error_shape_and_keeps_retry_after():
    response = exception_handler(Throttled(wait=42), {})
    assert response.status_code == 429
    assert response.data["error"]["code"] == "throttled"
    assert response["Retry-After"] == "42"


def test_a_database_that_does_not_answer_is_a_503_with_retry_after():
    response = exception_handler(OperationalError("connection refused"), {})
    assert response.status_code == 503
    assert response.data["error"]["code"] == "unavailable"
    assert "connection refused" not in response.data["error"]["message"]
    assert int(response["Retry-After"]) > 0


def test_a_public_body_of_2_5_mb_is_a_413_naming_the_limit(public_api, settings):
    body = json.dumps({"kind": "access", "identity": {"email": "a@b.com"}, "pad": "x" * 2_500_000})
    response = public_api.generic("POST", FILE_URL, body, content_type="application/json")
    assert response.status_code == 413
    error = _error(response)
    assert error["code"] == "too_large"
    assert str(settings.PORTAL_MAX_BODY_BYTES) in error["message"]
    assert "PORTAL_MAX_BODY_BYTES" in error["message"]
    assert DataRequest.objects.count() == 0


def test_a_body_just_under_the_public_limit_is_read(public_api, settings):
    settings.PORTAL_MAX_BODY_BYTES = 4096
    body = json.dumps({"kind": "access", "identity": {"email": "a@b.com"}, "pad": ""})
    body = body.replace('"pad": ""', '"pad": "' + "x" * (4096 - len(body)) + '"')
    assert len(body) == 4096
    response = public_api.generic("POST", FILE_URL, body, content_type="application/json")
    assert response.status_code == 201, response.content
    response = public_api.generic("POST", FILE_URL, body + " ", content_type="application/json")
    assert response.status_code == 413


def test_staff_bodies_may_be_larger_than_public_ones(staff_api, settings):
    assert settings.PORTAL_STAFF_MAX_BODY_BYTES > 1_000_000
    body = json.dumps({"reason": "x" * 1_500_000, "months": 1})
    response = staff_api.generic(
        "POST", "/api/v1/staff/requests/nope/extend/", body, content_type="application/json"
    )
    assert response.status_code == 404  # read past the size check, then not found
    body = json.dumps({"reason": "x" * (settings.PORTAL_STAFF_MAX_BODY_BYTES + 1)})
    response = staff_api.generic(
        "POST", "/api/v1/staff/requests/nope/extend/", body, content_type="application/json"
    )
    assert response.status_code == 413
    assert "PORTAL_STAFF_MAX_BODY_BYTES" in _error(response)["message"]


def test_a_map_has_its_own_larger_limit_from_the_map_size_setting(staff_api, settings):
    settings.PORTAL_STAFF_MAX_BODY_BYTES = 2048
    settings.PORTAL_MAP_MAX_BYTES = 4096
    body = json.dumps({"map": "#" * 4000})
    other = staff_api.generic(
        "POST", "/api/v1/staff/requests/nope/extend/", body, content_type="application/json"
    )
    assert other.status_code == 413
    on_map = staff_api.generic(
        "PUT", "/api/v1/staff/stores/nope/map/", body, content_type="application/json"
    )
    assert on_map.status_code == 404  # within the map's limit: read, then not found
    too_big = json.dumps({"map": "#" * 8200})
    response = staff_api.generic(
        "PUT", "/api/v1/staff/stores/nope/map/", too_big, content_type="application/json"
    )
    assert response.status_code == 413
    error = _error(response)
    assert "8192 bytes" in error["message"] and "PORTAL_MAP_MAX_BYTES" in error["message"]
    created = staff_api.generic("POST", "/api/v1/staff/stores/", too_big, "application/json")
    assert created.status_code == 413


def test_the_default_limits_take_a_map_of_the_largest_allowed_size(settings):
    from requests.limits import body_limit

    assert settings.PORTAL_STAFF_MAX_BODY_BYTES > 1_000_000
    limit, _ = body_limit("/api/v1/staff/stores/shop/map/")
    assert limit >= 2 * settings.PORTAL_MAP_MAX_BYTES
    assert limit <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_json_nested_deeper_than_the_limit_is_a_400_naming_it(public_api, settings):
    assert settings.PORTAL_MAX_JSON_DEPTH == 32
    response = public_api.post(FILE_URL, _nested(33), "json")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "too_deep"
    assert "32 levels" in error["message"] and "PORTAL_MAX_JSON_DEPTH" in error["message"]
    assert DataRequest.objects.count() == 0


def test_json_nested_deeper_than_python_recurses_is_a_400(public_api, settings):
    settings.PORTAL_MAX_BODY_BYTES = 1_000_000
    depth = 200_000
    body = '{"x": ' + "[" * depth + "]" * depth + "}"
    response = public_api.generic("POST", FILE_URL, body, content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == "too_deep"


def test_json_as_deep_as_the_limit_is_read(public_api):
    response = public_api.post(FILE_URL, _nested(32), "json")
    assert response.status_code == 201, response.content


def test_an_oversized_public_form_gets_a_readable_413_page(client, settings):
    response = client.post("/", {"email": "a@b.com", "kind": "access", "pad": "x" * 100_000})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Too much data" in page and "Traceback" not in page
    assert DataRequest.objects.count() == 0


def test_the_413_page_speaks_the_person_s_language(client):
    response = client.post("/", {"pad": "x" * 100_000}, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    assert response.status_code == 413
    assert "Trop de données" in response.content.decode()


def test_an_oversized_staff_form_gets_the_413_page(client, staff_user, settings):
    settings.PORTAL_STAFF_MAX_BODY_BYTES = 2048
    client.force_login(staff_user)
    response = client.post("/staff/", {"q": "x" * 5000})
    assert response.status_code == 413
    assert "Too much data" in response.content.decode()


def test_a_content_length_that_is_not_a_number_is_a_400(public_api):
    response = public_api.generic(
        "POST", FILE_URL, "{}", content_type="application/json", CONTENT_LENGTH="lots"
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "bad_length"


def test_options_on_the_certificate_as_a_page_describes_the_view_instead_of_failing(staff_api):
    response = staff_api.options("/api/v1/staff/requests/nothing-here/certificate/?format=html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"<title>Erasure certificate</title>" in response.content
