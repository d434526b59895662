"""In Chromium: a person files a request in French; later, in a browser that asks for English,
their status page still shows the steps in French; staff ask them for information, and they
reply on that page, which sends the request back to review with the reply on the staff's page."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_console_request_flow import sign_in
from tests.conftest import code_from

pytestmark = pytest.mark.slow

IN_REVIEW_FR = "En cours d\N{RIGHT SINGLE QUOTATION MARK}examen"


def test_a_french_request_shows_french_steps_in_an_english_browser_and_takes_a_reply(
    live_portal, new_page
):
    filing = new_page(locale="fr-FR")
    filing.goto(live_portal.url("/"))
    filing.get_by_label("Accès (une copie de mes données)").check()
    filing.get_by_label("Adresse e-mail").fill("marie@example.com")
    filing.get_by_role("button", name="Envoyer ma demande").click()
    filing.wait_for_url(re.compile(r"/r/[^/]+/filed/$"))
    reference = filing.locator("strong.reference").inner_text().strip()
    filing.get_by_label("Code reçu par e-mail").fill(code_from(live_portal.inbox.wait_for(1)))
    filing.get_by_role("button", name="Confirmer ma demande").click()
    filing.wait_for_url(re.compile(rf"/r/{re.escape(reference)}/status/"))
    status_url = filing.url

    dpo = new_page()
    sign_in(dpo, live_portal, username="dpo", password=live_portal.demo_password)
    dpo.goto(live_portal.url(f"/staff/requests/{reference}/"))
    dpo.get_by_label("What do you need from the person?").fill("Dans quel magasin ?")
    dpo.get_by_role("button", name="Ask the person").click()
    assert dpo.locator("dt:text-is('Status') + dd").inner_text().strip() == ("Awaiting information")

    # Another browser, asking for English, with no cookie from the filing.
    person = new_page(locale="en-GB")
    person.goto(status_url)
    assert person.locator("html").get_attribute("lang") == "fr"
    steps = person.get_by_role("navigation", name="Avancement de votre demande")
    assert steps.get_by_role("listitem").all_inner_texts()[0].startswith("Déposée")
    current = steps.locator("[aria-current=step]")
    assert IN_REVIEW_FR in current.inner_text()
    main = person.locator("main")
    assert "Prochaine étape : envoyez-nous ci-dessous les informations demandées." in (
        main.inner_text()
    )
    assert "Your request" not in main.inner_text()
    assert "Dans quel magasin ?" in main.inner_text()

    person.get_by_label("Votre réponse").fill("Le magasin de Lyon, commande 4411.")
    person.get_by_role("button", name="Envoyer ma réponse").click()

    assert "Merci : nous avons bien reçu votre réponse" in (
        person.get_by_role("status").inner_text()
    )
    assert "Nous avons reçu votre réponse le" in person.locator("main").inner_text()
    assert person.get_by_label("Votre réponse").count() == 0
    assert IN_REVIEW_FR in person.locator("[aria-current=step]").inner_text()

    dpo.reload()
    assert dpo.locator("dt:text-is('Status') + dd").inner_text().strip() == "In review"
    staff_view = dpo.locator("main").inner_text()
    assert "replied on their status page" in staff_view
    assert "Le magasin de Lyon, commande 4411." in staff_view  # the reply, on the request page
