import pytest

from requests.models import AuditEvent, DataRequest
from tests.conftest import code_from

pytestmark = pytest.mark.django_db


def test_filing_a_request_answers_201_with_its_reference_and_status(public_api, mailoutbox):
    response = public_api.post(
        "/api/v1/requests/",
        {"kind": "erasure", "identity": {"email": "Ada@Example.com", "phone": "+33 6 12 34 56 78"}},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"reference", "status", "phone_read_as"}
    assert body["status"] == "awaiting_verification"
    assert body["phone_read_as"] == "+33 6 12 34 56 78"
    stored = DataRequest.objects.get(reference=body["reference"])
    assert stored.kind == "erasure"
    assert stored.identity == {"email": "ada@example.com", "phone": "+33612345678"}
    assert stored.due_on is not None


def test_the_answer_is_the_same_whether_or_not_anything_is_held(public_api, file_request):
    file_request(email="known@example.com")
    first = public_api.post(
        "/api/v1/requests/",
        {"kind": "access", "identity": {"email": "known@example.com"}},
        format="json",
    )
    second = public_api.post(
        "/api/v1/requests/",
        {"kind": "access", "identity": {"email": "nobody@example.com"}},
        format="json",
    )
    assert first.status_code == second.status_code == 201
    assert set(first.json()) == set(second.json())
    assert first.json()["status"] == second.json()["status"]
    assert len(first.content) == len(second.content)


def test_the_verification_email_carries_a_code_and_a_link_but_never_the_code_in_storage(
    file_request, mailoutbox
):
    reference = file_request(email="ada@example.com")
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["ada@example.com"]
    code = code_from(message)
    assert f"/r/{reference}/verify/" in message.body
    verification = DataRequest.objects.get(reference=reference).verification
    assert code not in verification.code_hash
    assert len(verification.code_hash) == 64


def test_the_identity_is_encrypted_at_rest(file_request):
    from django.db import connection

    reference = file_request(email="secret.person@example.com")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT identity FROM {DataRequest._meta.db_table} WHERE reference = %s", [reference]
        )
        raw = cursor.fetchone()[0]
    assert "secret.person" not in raw
    assert DataRequest.objects.get(reference=reference).email == "secret.person@example.com"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "access", "identity": {}}, "identity.email"),
        ({"kind": "access", "identity": {"email": "not-an-email"}}, "identity.email"),
        ({"kind": "access"}, "identity"),
        ({"kind": "portability", "identity": {"email": "a@b.com"}}, "kind"),
        ({"identity": {"email": "a@b.com"}}, "kind"),
        ({"kind": "access", "identity": {"email": "a" * 250 + "@b.com"}}, "identity.email"),
        ({"kind": "access", "identity": {"email": "a@b.com", "name": "x" * 201}}, "identity.name"),
        (
            {"kind": "access", "identity": {"email": "a@b.com", "phone": "call me"}},
            "identity.phone",
        ),
        (
            {"kind": "access", "identity": {"email": "a@b.com", "shoe_size": "42"}},
            "identity.shoe_size",
        ),
        ({"kind": "access", "identity": "a@b.com"}, "identity"),
    ],
)
def test_bad_input_gets_a_400_naming_the_field_and_files_nothing(public_api, payload, field):
    response = public_api.post("/api/v1/requests/", payload, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == field, error
    assert error["code"] and error["message"], error
    assert DataRequest.objects.count() == 0


def test_a_body_that_is_not_json_gets_a_400_not_a_500(public_api):
    response = public_api.generic(
        "POST", "/api/v1/requests/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_the_right_code_verifies_and_moves_the_request_to_review(
    public_api, file_request, mailoutbox
):
    reference = file_request()
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(mailoutbox[0])}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"reference": reference, "status": "in_review"}
    actions = list(
        AuditEvent.objects.filter(request__reference=reference).values_list("action", flat=True)
    )
    assert actions == ["request.filed", "request.verified", "identity.verified"]


def test_a_wrong_code_only_counts_an_attempt(public_api, file_request, mailoutbox):
    reference = file_request()
    right = code_from(mailoutbox[0])
    wrong = "000000" if right != "000000" else "111111"
    before = DataRequest.objects.get(reference=reference)
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": wrong}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "wrong_code",
        "message": "That code is not right. 4 attempt(s) left.",
        "field": "code",
        "attempts_left": 4,
    }
    after = DataRequest.objects.get(reference=reference)
    assert after.status == before.status == "awaiting_verification"
    assert after.due_on == before.due_on
    assert after.verification.failed_attempts == 1
    assert after.verification.code_hash == before.verification.code_hash


def test_five_wrong_codes_lock_the_check_even_for_the_right_code(
    public_api, file_request, mailoutbox
):
    reference = file_request()
    right = code_from(mailoutbox[0])
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        public_api.post(f"/api/v1/requests/{reference}/verify/", {"code": wrong}, format="json")
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": right}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "locked"
    assert DataRequest.objects.get(reference=reference).status == "awaiting_verification"


def test_an_expired_code_is_refused(public_api, file_request, mailoutbox):
    from datetime import timedelta

    from django.utils import timezone

    reference = file_request()
    verification = DataRequest.objects.get(reference=reference).verification
    verification.expires_at = timezone.now() - timedelta(seconds=1)
    verification.save()
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(mailoutbox[0])}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "expired"


def test_a_code_cannot_be_used_twice(public_api, file_request, mailoutbox):
    reference = file_request()
    code = code_from(mailoutbox[0])
    public_api.post(f"/api/v1/requests/{reference}/verify/", {"code": code}, format="json")
    replay = public_api.post(f"/api/v1/requests/{reference}/verify/", {"code": code}, format="json")
    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "already_used"


@pytest.mark.parametrize("code", ["", "12345", "abcdef", "1234567"])
def test_a_malformed_code_is_refused_without_counting_an_attempt(public_api, file_request, code):
    reference = file_request()
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "code"
    assert DataRequest.objects.get(reference=reference).verification.failed_attempts == 0


def test_verifying_an_unknown_reference_is_a_404(public_api):
    response = public_api.post(
        "/api/v1/requests/no-such-reference/verify/", {"code": "123456"}, format="json"
    )
    assert response.status_code == 404


def test_a_new_code_replaces_the_old_one_and_lifts_a_lock(
    public_api, file_request, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_RESEND_INTERVAL = __import__("datetime").timedelta(seconds=0)
    reference = file_request()
    old = code_from(mailoutbox[0])
    wrong = "000000" if old != "000000" else "111111"
    for _ in range(5):
        public_api.post(f"/api/v1/requests/{reference}/verify/", {"code": wrong}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        response = public_api.post(f"/api/v1/requests/{reference}/resend/")
    assert response.status_code == 202
    assert len(mailoutbox) == 2
    new = code_from(mailoutbox[1])
    if new != old:
        stale = public_api.post(
            f"/api/v1/requests/{reference}/verify/", {"code": old}, format="json"
        )
        assert stale.status_code == 400
    ok = public_api.post(f"/api/v1/requests/{reference}/verify/", {"code": new}, format="json")
    assert ok.status_code == 200


def test_resending_too_soon_is_rate_limited(public_api, file_request, settings):
    from datetime import timedelta

    settings.PORTAL_RESEND_INTERVAL = timedelta(seconds=60)
    reference = file_request()
    response = public_api.post(f"/api/v1/requests/{reference}/resend/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_filing_is_throttled_per_client(public_api, settings):
    from django.core.cache import cache

    cache.clear()
    settings.PORTAL_RATE_LIMITS = {**settings.PORTAL_RATE_LIMITS, "file_per_address": (2, 86400)}
    statuses = [
        public_api.post(
            "/api/v1/requests/",
            {"kind": "access", "identity": {"email": f"p{i}@example.com"}},
            format="json",
        ).status_code
        for i in range(3)
    ]
    cache.clear()
    assert statuses == [201, 201, 429]
