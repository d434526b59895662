"""The staff console in French: the queue, the dashboard and the staff accounts page, with the
roles' names, for staff whose browser asks for French."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

APOSTROPHE = "\N{RIGHT SINGLE QUOTATION MARK}"


@pytest.fixture
def staff_client(client, staff_user):
    from requests.services import lifecycle

    lifecycle.request_file(kind="access", identity={"email": "ada@example.com"})
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize(
    ("page", "phrases"),
    [
        ("/staff/", ["Afficher les demandes", "Référence ou adresse e-mail", "Demandes en cours"]),
        ("/staff/", ["Qui me sont attribuées", "Refuser les demandes sélectionnées"]),
        ("/staff/?status=lost", [f"Il n{APOSTROPHE}existe pas d{APOSTROPHE}état « lost »"]),
        ("/staff/dashboard/", ["Tableau de bord", "Délai médian de réponse", "Demandes par mois"]),
        ("/staff/users/", [f"Comptes de l{APOSTROPHE}équipe", "chaque rôle", "Instructeur"]),
    ],
)
def test_console_pages_speak_french_to_french_staff(staff_client, page, phrases):
    response = staff_client.get(page, HTTP_ACCEPT_LANGUAGE="fr")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Connecté en tant que dpo (DPO)" in html
    for phrase in phrases:
        assert phrase in html
