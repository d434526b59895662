"""Proving a phone number by a code sent in a text message: the signed webhook to the SMS
gateway (a real HTTP server here), the code's limits (wrong codes lock, codes expire, resends are
spaced) and the step on the person's status page."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from requests import sms
from requests.connectors.webhook import verify_signature
from requests.models import AuditEvent, DataRequest, IdentifierVerification
from tests.conftest import code_from

pytestmark = pytest.mark.django_db

PHONE = "+33612345678"
SECRET = "gateway-shared-secret"


class Gateway:
    """An SMS gateway on a free local port: keeps each call with whether its signature held."""

    def __init__(self, answer: int = 202) -> None:
        self.answer = answer
        self.calls: list[dict] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gateway.calls.append(
                    {
                        "json": json.loads(body),
                        "signed": verify_signature(
                            SECRET,
                            self.headers.get("X-Portal-Timestamp"),
                            body,
                            self.headers.get("X-Portal-Signature"),
                        ),
                    }
                )
                self.send_response(gateway.answer)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway(settings):
    running = Gateway()
    settings.PORTAL_SMS_SENDER = "webhook"
    settings.PORTAL_SMS_WEBHOOK_URL = running.url
    settings.PORTAL_SMS_WEBHOOK_SECRET = SECRET
    yield running
    running.close()


@pytest.fixture
def verified_email(public_api, file_request):
    """A request with a phone whose email is verified (the phone step comes after it)."""
    reference = file_request(kind="access", email="ada@example.com", phone="+33 6 12 34 56 78")
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(mail.outbox[-1])}
    )
    assert response.status_code == 200
    return reference


def _send(public_api, reference):
    return public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {}, format="json")


def _check(public_api, reference, code):
    return public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {"code": code})


def _code(text: str) -> str:
    return re.search(r"\b(\d{6})\b", text).group(1)


def test_the_code_goes_to_the_sms_gateway_in_a_signed_call_and_verifies_the_phone(
    gateway, verified_email, public_api
):
    response = _send(public_api, verified_email)
    assert response.status_code == 202, response.content
    (call,) = gateway.calls
    assert call["signed"]
    assert call["json"]["to"] == PHONE and call["json"]["reference"] == verified_email
    checked = _check(public_api, verified_email, _code(call["json"]["text"]))
    assert checked.status_code == 200, checked.content
    row = IdentifierVerification.objects.get(
        request__reference=verified_email, identity_type="phone"
    )
    assert (row.state, row.method, row.code_hash) == ("verified", "sms_code", "")
    # Only a keyed hash of the code was ever kept, and the audit trail names no number.
    assert PHONE not in json.dumps(list(AuditEvent.objects.values_list("details", flat=True)))


def test_a_gateway_that_refuses_answers_503_and_the_unsent_code_cannot_be_used(
    gateway, verified_email, public_api
):
    gateway.answer = 500
    response = _send(public_api, verified_email)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "sms_not_sent"
    assert response["Retry-After"] == "60"
    assert PHONE not in response.content.decode()
    row = IdentifierVerification.objects.get(
        request__reference=verified_email, identity_type="phone"
    )
    assert row.code_hash == ""
    code = _code(gateway.calls[0]["json"]["text"])
    assert _check(public_api, verified_email, code).json()["error"]["code"] == "not_sent"
    # The person may ask again at once: the failed send does not count against the interval.
    gateway.answer = 202
    assert _send(public_api, verified_email).status_code == 202


def test_five_wrong_codes_lock_the_check_until_a_new_code_is_sent(
    verified_email, public_api, settings
):
    settings.PORTAL_SMS_SENDER = "console"
    settings.PORTAL_RESEND_INTERVAL = timedelta(0)
    assert _send(public_api, verified_email).status_code == 202
    right = _code(sms.outbox[-1].text)
    wrong = "000000" if right != "000000" else "111111"
    codes = [_check(public_api, verified_email, wrong).json()["error"]["code"] for _ in range(5)]
    assert codes == ["wrong_code"] * 4 + ["locked"]
    assert _check(public_api, verified_email, right).json()["error"]["code"] == "locked"
    assert _send(public_api, verified_email).status_code == 202
    assert _check(public_api, verified_email, _code(sms.outbox[-1].text)).status_code == 200


def test_an_expired_code_is_refused_and_resends_are_spaced(verified_email, public_api, settings):
    settings.PORTAL_SMS_SENDER = "console"
    assert _send(public_api, verified_email).status_code == 202
    too_soon = _send(public_api, verified_email)
    assert too_soon.status_code == 429 and int(too_soon["Retry-After"]) > 0
    IdentifierVerification.objects.filter(
        request__reference=verified_email, identity_type="phone"
    ).update(expires_at=DataRequest.objects.get(reference=verified_email).received_at)
    expired = _check(public_api, verified_email, _code(sms.outbox[-1].text))
    assert expired.json()["error"]["code"] == "expired"


def test_the_status_page_offers_the_phone_step_and_confirms_the_phone(
    verified_email, client, settings
):
    settings.PORTAL_SMS_SENDER = "console"
    request = DataRequest.objects.get(reference=verified_email)
    url = request.status_url().removeprefix(settings.PORTAL_BASE_URL)
    page = client.get(url).content.decode()
    assert "Confirm your phone number" in page and 'name="phone_send"' in page
    assert PHONE not in page and "12 34 56 78" not in page  # no identity value is shown
    sent = client.post(url, {"phone_send": "1"}, follow=True)
    assert "We sent a code by text message" in sent.content.decode()
    assert 'name="phone_code"' in sent.content.decode()
    wrong = client.post(url, {"phone_code": "1", "code": "12"}, follow=True)
    assert "6-digit code" in wrong.content.decode()
    done = client.post(url, {"phone_code": "1", "code": _code(sms.outbox[-1].text)}, follow=True)
    assert "Your phone number is confirmed." in done.content.decode()
    assert 'name="phone_send"' not in done.content.decode()
    assert IdentifierVerification.objects.get(identity_type="phone").state == "verified"


def test_the_demo_sender_keeps_the_message_for_the_staff_mail_page_and_not_in_the_log(
    verified_email, public_api, settings, caplog
):
    from requests.models import DemoMail

    settings.PORTAL_SMS_SENDER = "console"
    with caplog.at_level("DEBUG"):
        assert _send(public_api, verified_email).status_code == 202
    code = _code(sms.outbox[-1].text)
    kept = DemoMail.objects.order_by("-pk").first().content
    assert kept["to"] == [PHONE] and code in kept["body"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert code not in logged and PHONE not in logged and "6 12 34" not in logged


def test_a_request_filed_in_french_gets_its_text_message_in_french(
    public_api, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_SMS_SENDER = "console"
    with django_capture_on_commit_callbacks(execute=True):
        filed = public_api.post(
            "/api/v1/requests/",
            {
                "kind": "access",
                "language": "fr",
                "identity": {"email": "ada@example.com", "phone": PHONE},
            },
            format="json",
        )
    reference = filed.json()["reference"]
    verified = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(mail.outbox[-1])}
    )
    assert verified.status_code == 200
    assert _send(public_api, reference).status_code == 202
    assert "votre code pour confirmer ce numéro de téléphone" in sms.outbox[-1].text


def test_the_webhook_sender_without_its_url_or_secret_stops_the_portal_naming_them(tmp_path):
    import subprocess
    import sys

    from tests.processes import ROOT, portal_env

    env = portal_env(
        PORTAL_DATA_DIR=str(tmp_path),
        PORTAL_SMS_SENDER="webhook",
        PORTAL_SMS_WEBHOOK_URL="https://sms.example/send",
        PORTAL_SMS_WEBHOOK_SECRET="",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "PORTAL_SMS_WEBHOOK_SECRET" in result.stderr
