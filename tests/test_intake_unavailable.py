"""A database error while filing answers 503 with Retry-After (API and page), never 500.

The error is a real one from PostgreSQL: another session locks the audit events' table against
writes, so the filing's audit event cannot be inserted, and the portal's session is told to give
up waiting for a lock at once (lock_timeout). (Filings no longer lock the audit chain's head, so
holding that row, as this test once did, no longer stops them.)
"""

from contextlib import contextmanager

import pytest
from django.db import connection
from django.urls import reverse

from requests.models import DataRequest

pytestmark = pytest.mark.django_db(transaction=True)


def _needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("needs the portal on PostgreSQL (lock_timeout); set DATABASE_URL to one")


@contextmanager
def _table_locked(table: str, mode: str):
    """Another session holds `table` in `mode`, and the portal's session gives up waiting for a
    lock after 200 ms: a real database error on the first statement that needs the table."""
    import psycopg

    params = connection.settings_dict
    other = psycopg.connect(
        host=params["HOST"],
        port=params["PORT"] or 5432,
        user=params["USER"],
        password=params["PASSWORD"],
        dbname=params["NAME"],
    )
    try:
        other.execute(f"LOCK TABLE {table} IN {mode} MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        yield
    finally:
        other.rollback()
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


@pytest.fixture
def database_failing_on_filing():
    _needs_postgresql()
    with _table_locked("requests_auditevent", "SHARE"):
        yield


def test_filing_through_the_api_while_the_database_fails_answers_503_with_retry_after(
    database_failing_on_filing, public_api
):
    response = public_api.post(
        "/api/v1/requests/",
        {"kind": "access", "identity": {"email": "ada@example.com"}},
        format="json",
    )

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert b"unavailable" in response.content
    assert DataRequest.objects.count() == 0


def test_filing_on_the_page_while_the_database_fails_shows_a_try_again_page_with_503(
    database_failing_on_filing, client
):
    response = client.post(reverse("request-file"), {"kind": "access", "email": "a@example.com"})

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "Please try again in a moment" in response.content.decode()
    assert DataRequest.objects.count() == 0


def test_the_try_again_page_speaks_the_persons_language(database_failing_on_filing, client):
    response = client.post(
        reverse("request-file"),
        {"kind": "access", "email": "a@example.com"},
        HTTP_ACCEPT_LANGUAGE="fr",
    )

    assert response.status_code == 503
    assert "Veuillez réessayer dans un instant" in response.content.decode()


def test_a_database_error_in_a_middleware_before_any_view_answers_503_not_500(staff_user, settings):
    _needs_postgresql()
    from django.test import Client

    settings.PORTAL_STAFF_2FA = "required"
    # The test client re-raises errors by default; a real server answers with the error handler.
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)

    # The sessions table held, the second-factor middleware's read of the signed-in session fails
    # before any view runs.
    with _table_locked("django_session", "ACCESS EXCLUSIVE"):
        response = client.get("/staff/")

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "Please try again in a moment" in response.content.decode()
