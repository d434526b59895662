"""What the person is handed: the access package's report promises only what the portal can do
(the other rights go to the controller's contact address), and the report and the erasure
certificate are documents with landmarks and a language."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from requests.services import lifecycle
from requests.services.access import render_index
from tests.access_fixtures import approve
from tests.erasure_fixtures import PERSON, file_erasure, shop_and_crm

pytestmark = pytest.mark.django_db


def _landmarks(html: str) -> list[str]:
    return re.findall(r"<(header|main|footer)[\s>]", html)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_report_has_landmarks_and_the_requests_language(language, settings):
    request = lifecycle.request_file(kind="access", identity={"email": PERSON}, language=language)
    now = timezone.now()

    html = render_index(request=request, reports=[], generated_at=now, expires_at=now)

    assert f'<html lang="{language}">' in html
    assert _landmarks(html) == ["header", "main", "footer"]


def test_the_report_sends_the_other_rights_to_the_contact_address_not_to_a_new_request(settings):
    settings.PORTAL_CONTACT_EMAIL = "dpo@shop.example"
    request = lifecycle.request_file(kind="access", identity={"email": PERSON}, language="en")
    now = timezone.now()

    html = render_index(request=request, reports=[], generated_at=now, expires_at=now)
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())

    assert "make a new request" not in text.lower()
    assert (
        "To ask for rectification, restriction or objection, write to Example Organisation at "
        "dpo@shop.example" in text
    )
    assert 'href="mailto:dpo@shop.example"' in html
    assert f'href="{settings.PORTAL_BASE_URL}/"' in html


def test_the_french_report_says_the_same_in_french(settings):
    settings.PORTAL_CONTACT_EMAIL = "dpo@shop.example"
    request = lifecycle.request_file(kind="access", identity={"email": PERSON}, language="fr")
    now = timezone.now()

    html = render_index(request=request, reports=[], generated_at=now, expires_at=now)

    assert "Pour demander la rectification, la limitation ou vous opposer" in html
    assert "To ask for rectification" not in html


def test_the_certificate_page_has_landmarks(
    tmp_path, settings, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    settings.DATA_DIR = tmp_path / "data"
    shop_and_crm(tmp_path)
    reference = file_erasure(public_api, file_request)
    assert approve(staff_api, django_capture_on_commit_callbacks, reference)["status"] == (
        "completed"
    )

    response = staff_api.get(f"/api/v1/staff/requests/{reference}/certificate/?format=html")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="en">' in html
    assert _landmarks(html) == ["header", "main", "footer"]
