"""Phone numbers stored in national form, read in each store's region (issue 9, Deliver 7).

A French store (SQLite or PostgreSQL) holds `06 12 34 56 78`, a British one `07700 900123`; each
also holds a look-alike: the other country's national digits written in its own national form,
which is another person's number there. A person who proved `+33 6 12 34 56 78` (by a text-message
code) or `+44 7700 900123` (confirmed by staff) gets exactly their own rows, in the preview, the
access package and the erasure, and never the look-alike. The public form and API read a national
number in the organisation's region and say how they read it.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from django.core import mail
from django.urls import reverse

from requests import sms
from requests.engine.mapfile import MapError, load_store_map
from requests.models import ConnectedStore, DataRequest
from tests.access_fixtures import approve, data_json, zip_of
from tests.conftest import code_from

pytestmark = pytest.mark.django_db

CLAIRE = "+33 6 12 34 56 78"  # in the French store as 06 12 34 56 78 (row 1)
OLIVER = "+44 7700 900123"  # in the British store as 07700 900123 (row 1)

ROWS = {
    "FR": {
        "customers": [
            (1, "claire@boutique.example", "06 12 34 56 78"),
            (2, "paul@boutique.example", "06 12 34 56 79"),
            # Oliver's national digits, in a French store: +33 7700900123 is no French number.
            (3, "visiteur@boutique.example", "07700 900123"),
        ],
        "orders": [(10, 1), (11, 1), (20, 2), (30, 3)],
    },
    "GB": {
        "customers": [
            (1, "oliver@shop.example", "07700 900123"),
            (2, "amelia@shop.example", "07700 900124"),
            # Claire's national digits, in a British store: +44 612345678, someone else.
            (3, "guest@shop.example", "06 12 34 56 78"),
        ],
        "orders": [(10, 1), (20, 2), (30, 3), (31, 3)],
    },
}


def _map(region: str | None) -> str:
    head = f"phone_region: {region}\n" if region else ""
    return head + (
        "collections:\n"
        "  customers:\n"
        "    key: [id]\n"
        "    fields:\n"
        "      email: {identity: email}\n"
        "      phone: {identity: phone}\n"
        "  orders:\n"
        "    key: [id]\n"
        "    fields:\n"
        "      customer_id: {references: {collection: customers, field: id}}\n"
    )


def _fill(url: str, country: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, phone TEXT)")
        )
        conn.execute(
            sa.text(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY,"
                " customer_id INTEGER REFERENCES customers(id))"
            )
        )
        for row in ROWS[country]["customers"]:
            conn.execute(
                sa.text("INSERT INTO customers VALUES (:i, :e, :p)"),
                {"i": row[0], "e": row[1], "p": row[2]},
            )
        for row in ROWS[country]["orders"]:
            conn.execute(sa.text("INSERT INTO orders VALUES (:i, :c)"), {"i": row[0], "c": row[1]})
    engine.dispose()


def _ids(url: str, table: str) -> list[int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text(f"SELECT id FROM {table} ORDER BY id"))]
    engine.dispose()
    return ids


@pytest.fixture(params=["fr-in-sqlite", "fr-in-postgresql"])
def stores(request, tmp_path, settings, postgres_database):
    """Store `fr` (map region FR) and store `gb` (map region GB), one in SQLite and one in
    PostgreSQL, each way round; the portal itself has no default region."""
    settings.DATA_DIR = tmp_path / "data"
    settings.PORTAL_DEFAULT_PHONE_REGION = None
    sqlite_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    if request.param == "fr-in-sqlite":
        placed = {"fr": ("sqlite", sqlite_url), "gb": ("postgresql", postgres_database)}
    else:
        placed = {"fr": ("postgresql", postgres_database), "gb": ("sqlite", sqlite_url)}
    urls = {}
    for name, (kind, url) in placed.items():
        _fill(url, name.upper())
        ConnectedStore.objects.create(name=name, kind=kind, url=url, map_yaml=_map(name.upper()))
        urls[name] = url
    return urls


def _file_and_verify_email(public_api, file_request, kind: str, email: str, phone: str) -> str:
    reference = file_request(kind=kind, email=email, phone=phone)
    response = public_api.post(
        f"/api/v1/requests/{reference}/verify/", {"code": code_from(mail.outbox[-1])}
    )
    assert response.status_code == 200, response.content
    return reference


def _prove_by_text_message(public_api, reference: str, settings) -> None:
    settings.PORTAL_SMS_SENDER = "console"
    sms.outbox.clear()
    sent = public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {}, format="json")
    assert sent.status_code == 202, sent.content
    code = re.search(r"\b(\d{6})\b", sms.outbox[-1].text).group(1)
    checked = public_api.post(f"/api/v1/requests/{reference}/verify-phone/", {"code": code})
    assert checked.status_code == 200, checked.content


def _confirm_by_staff(staff_api, reference: str) -> None:
    response = staff_api.post(
        f"/api/v1/staff/requests/{reference}/confirm-identity/",
        {"types": ["phone"], "note": "Called the number back and heard the account holder."},
        format="json",
    )
    assert response.status_code == 200, response.content


def _counts(staff_api, reference: str) -> dict[str, dict[str, int]]:
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/")
    assert response.status_code == 200, response.content
    return {
        store: {name: entry["count"] for name, entry in body["collections"].items()}
        for store, body in response.json()["stores"].items()
        if any(entry["count"] for entry in body["collections"].values())
    }


def _package_ids(staff_api, reference: str) -> dict[str, dict[str, list[int]]]:
    response = staff_api.get(f"/api/v1/staff/requests/{reference}/package/")
    assert response.status_code == 200
    return {
        store: {name: sorted(r["id"] for r in rows) for name, rows in collections.items() if rows}
        for store, collections in data_json(zip_of(response))["stores"].items()
        if any(collections.values())
    }


def test_a_person_who_proved_a_french_number_by_text_gets_the_french_stores_national_rows_only(
    stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    reference = _file_and_verify_email(
        public_api, file_request, "access", "claire@elsewhere.example", CLAIRE
    )
    assert _counts(staff_api, reference) == {}, "an unproven phone is not searched"
    _prove_by_text_message(public_api, reference, settings)

    assert _counts(staff_api, reference) == {"fr": {"customers": 1, "orders": 2}}
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail
    assert _package_ids(staff_api, reference) == {"fr": {"customers": [1], "orders": [10, 11]}}


def test_a_person_whose_british_number_staff_confirmed_gets_the_british_stores_rows_only(
    stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks
):
    reference = _file_and_verify_email(
        public_api, file_request, "access", "oliver@elsewhere.example", OLIVER
    )
    _confirm_by_staff(staff_api, reference)

    assert _counts(staff_api, reference) == {"gb": {"customers": 1, "orders": 1}}
    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)
    assert detail["status"] == "completed", detail
    assert _package_ids(staff_api, reference) == {"gb": {"customers": [1], "orders": [10]}}


def test_erasure_by_a_proven_french_number_erases_her_national_rows_and_not_the_look_alike(
    stores, public_api, file_request, staff_api, django_capture_on_commit_callbacks, settings
):
    reference = _file_and_verify_email(
        public_api, file_request, "erasure", "claire@elsewhere.example", CLAIRE
    )
    _prove_by_text_message(public_api, reference, settings)

    detail = approve(staff_api, django_capture_on_commit_callbacks, reference)

    assert detail["status"] == "completed", detail
    assert _ids(stores["fr"], "customers") == [2, 3]
    assert _ids(stores["fr"], "orders") == [20, 30]
    assert _ids(stores["gb"], "customers") == [1, 2, 3]
    assert _ids(stores["gb"], "orders") == [10, 20, 30, 31]


def test_without_a_region_in_the_map_the_portals_default_region_reads_the_store(
    stores, public_api, file_request, staff_api, settings
):
    ConnectedStore.objects.filter(name="fr").update(map_yaml=_map(None))
    ConnectedStore.objects.filter(name="gb").delete()
    reference = _file_and_verify_email(
        public_api, file_request, "access", "claire@elsewhere.example", CLAIRE
    )
    _confirm_by_staff(staff_api, reference)
    assert _counts(staff_api, reference) == {}, "no region: a national number cannot be read"

    settings.PORTAL_DEFAULT_PHONE_REGION = "FR"
    assert _counts(staff_api, reference) == {"fr": {"customers": 1, "orders": 2}}


def test_a_field_can_name_its_own_region_over_the_stores(
    stores, public_api, file_request, staff_api
):
    # The British store's map says FR for the whole store but GB on its phone column.
    gb_map = _map("FR").replace(
        "phone: {identity: phone}", "phone: {identity: phone, phone_region: gb}"
    )
    ConnectedStore.objects.filter(name="gb").update(map_yaml=gb_map)
    reference = _file_and_verify_email(
        public_api, file_request, "access", "oliver@elsewhere.example", OLIVER
    )
    _confirm_by_staff(staff_api, reference)
    assert _counts(staff_api, reference) == {"gb": {"customers": 1, "orders": 1}}


def test_a_record_found_by_email_is_not_flagged_for_a_phone_it_holds_in_national_form(
    stores, public_api, file_request, staff_api, settings
):
    # The portal's region (GB) would read the French store's 06 12 34 56 78 as +44 612345678,
    # a different number; the store's own region reads it as the phone the person gave.
    settings.PORTAL_DEFAULT_PHONE_REGION = "GB"
    reference = _file_and_verify_email(
        public_api, file_request, "access", "claire@boutique.example", CLAIRE
    )
    preview = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/").json()
    customers = preview["stores"]["fr"]["collections"]["customers"]
    assert customers["count"] == 1
    assert customers["identity_mismatch"] == {"count": 0, "types": []}

    ConnectedStore.objects.filter(name="fr").update(map_yaml=_map("GB"))
    preview = staff_api.get(f"/api/v1/staff/requests/{reference}/preview/").json()
    customers = preview["stores"]["fr"]["collections"]["customers"]
    assert customers["identity_mismatch"] == {"count": 1, "types": ["phone"]}


def test_a_map_naming_an_unknown_region_is_refused_naming_the_line():
    with pytest.raises(MapError) as caught:
        load_store_map(_map("XX"))
    assert str(caught.value.problems[0]).startswith("line 1: phone_region:")
    assert "ISO 3166" in str(caught.value)
    field_level = _map(None).replace("{identity: phone}", "{identity: phone, phone_region: Q1}")
    with pytest.raises(MapError) as caught:
        load_store_map(field_level)
    assert str(caught.value.problems[0]).startswith(
        "line 6: collections.customers.fields.phone.phone_region:"
    )
    assert load_store_map(_map("fr")).phone_region == "FR"


# The public form and API -------------------------------------------------------------------------


def test_the_api_reads_a_national_number_in_the_default_region_and_says_how(public_api, settings):
    settings.PORTAL_DEFAULT_PHONE_REGION = "FR"
    response = public_api.post(
        "/api/v1/requests/",
        {"kind": "access", "identity": {"email": "claire@example.com", "phone": "06 12 34 56 78"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["phone_read_as"] == "+33 6 12 34 56 78"
    filed = DataRequest.objects.get(reference=response.json()["reference"])
    assert filed.identity["phone"] == "+33612345678"

    international = public_api.post(
        "/api/v1/requests/",
        {"kind": "access", "identity": {"email": "oliver@example.com", "phone": "+447700900123"}},
        format="json",
    )
    assert international.json()["phone_read_as"] == "+44 7700 900123"
    without = public_api.post(
        "/api/v1/requests/",
        {"kind": "access", "identity": {"email": "nophone@example.com"}},
        format="json",
    )
    assert "phone_read_as" not in without.json()


def test_the_api_refuses_a_national_number_without_a_default_region(public_api, settings):
    settings.PORTAL_DEFAULT_PHONE_REGION = None
    response = public_api.post(
        "/api/v1/requests/",
        {"kind": "access", "identity": {"email": "claire@example.com", "phone": "06 12 34 56 78"}},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "identity.phone"
    assert "international form" in error["message"]
    assert not DataRequest.objects.exists()


@pytest.mark.parametrize(
    ("language", "read_back"),
    [
        ("en", "We read your phone number as +33 6 12 34 56 78."),
        ("fr", "Nous avons lu votre numéro de téléphone comme +33 6 12 34 56 78."),
    ],
)
def test_the_form_reads_a_national_number_and_shows_how_on_the_filed_page(
    client, settings, language, read_back
):
    settings.PORTAL_DEFAULT_PHONE_REGION = "FR"
    client.post(reverse("set_language"), {"language": language, "next": "/"})
    form = client.get(reverse("request-file")).content.decode()
    assert "FR" in form  # the help text names the region a national number is read in

    response = client.post(
        reverse("request-file"),
        {"kind": "access", "email": "claire@example.com", "phone": "06 12 34 56 78"},
        follow=True,
    )

    assert response.status_code == 200
    assert read_back in response.content.decode()
    assert DataRequest.objects.get().identity["phone"] == "+33612345678"
    # Shown once: the filed page opened again by its reference does not show the number.
    again = client.get(response.redirect_chain[-1][0]).content.decode()
    assert "+33 6 12 34 56 78" not in again


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "Enter a valid phone number in international form, like +33 6 12 34 56 78."),
        ("fr", "Saisissez un numéro de téléphone valide au format international"),
    ],
)
def test_the_form_without_a_default_region_asks_for_the_country_code(
    client, settings, language, message
):
    settings.PORTAL_DEFAULT_PHONE_REGION = None
    client.post(reverse("set_language"), {"language": language, "next": "/"})
    response = client.post(
        reverse("request-file"),
        {"kind": "access", "email": "claire@example.com", "phone": "06 12 34 56 78"},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not DataRequest.objects.exists()


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "or a national number from FR."),
        ("fr", "ou un numéro national de la région FR."),
    ],
)
def test_the_form_with_a_default_region_names_it_when_a_number_is_bad(
    client, settings, language, message
):
    settings.PORTAL_DEFAULT_PHONE_REGION = "FR"
    client.post(reverse("set_language"), {"language": language, "next": "/"})
    response = client.post(
        reverse("request-file"), {"kind": "access", "email": "claire@example.com", "phone": "12"}
    )
    assert response.status_code == 400
    assert message in response.content.decode()


def test_an_unknown_portal_region_stops_the_portal_at_start_with_a_clear_message(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PORTAL_DATA_DIR": str(tmp_path), "PORTAL_DEFAULT_PHONE_REGION": "XX"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", "import portal.settings"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "PORTAL_DEFAULT_PHONE_REGION='XX' is not a region known" in result.stderr
