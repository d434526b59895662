"""Staff API tokens are stored as digests: the key is printed once and never kept."""

import importlib
import re
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection

from requests.models import ApiToken

pytestmark = pytest.mark.django_db


def _create_token(username: str, *args: str) -> str:
    out = StringIO()
    call_command("drf_create_token", username, *args, stdout=out)
    match = re.search(r"Generated token (\S+) for user " + re.escape(username), out.getvalue())
    assert match, out.getvalue()
    return match.group(1)


def _every_stored_value() -> str:
    """Every row of every table, as text: where a plaintext key would show up if it were kept."""
    dumped = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dumped.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dumped)


def test_a_token_made_by_the_command_opens_the_staff_api(staff_user, public_api):
    key = _create_token(staff_user.username)
    public_api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert public_api.get("/api/v1/staff/requests/").status_code == 200


def test_the_database_holds_no_plaintext_key(staff_user):
    key = _create_token(staff_user.username)
    assert ApiToken.objects.filter(user=staff_user).count() == 1
    stored = _every_stored_value()
    assert key not in stored
    assert key[:12] not in stored, "not even a prefix of the key is kept"


def test_a_wrong_or_revoked_key_is_refused(staff_user, public_api):
    first = _create_token(staff_user.username)
    second = _create_token(staff_user.username, "--reset")
    public_api.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert public_api.get("/api/v1/staff/requests/").status_code == 401
    public_api.credentials(HTTP_AUTHORIZATION=f"Token {second[:-1]}x")
    assert public_api.get("/api/v1/staff/requests/").status_code == 401
    public_api.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert public_api.get("/api/v1/staff/requests/").status_code == 200


def test_a_deactivated_users_token_stops_working(staff_user, public_api):
    key = _create_token(staff_user.username)
    staff_user.is_active = False
    staff_user.save()
    public_api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert public_api.get("/api/v1/staff/requests/").status_code == 401


def test_creating_a_token_is_audited_without_the_key(staff_user):
    from requests.models import AuditEvent

    key = _create_token(staff_user.username)
    event = AuditEvent.objects.filter(action="api_token.created").get()
    assert key not in repr(event.details)


def test_the_command_names_an_unknown_user():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nobody"):
        call_command("drf_create_token", "nobody", stdout=StringIO())


def test_the_schema_still_documents_the_token_header(staff_api):
    schema = staff_api.get("/api/schema/?format=json").json()
    scheme = schema["components"]["securitySchemes"]["tokenAuth"]
    assert scheme["in"] == "header" and scheme["name"] == "Authorization"


def test_the_migration_turns_drf_plaintext_tokens_into_digests(staff_user, public_api):
    migration = importlib.import_module("requests.migrations.0008_api_tokens")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {quote('authtoken_token')} ({quote('key')} varchar(40) PRIMARY KEY, "
            f"{quote('user_id')} integer NOT NULL, {quote('created')} timestamp NOT NULL)"
        )
        cursor.execute(
            f"INSERT INTO {quote('authtoken_token')} VALUES (%s, %s, CURRENT_TIMESTAMP)",
            ["0123456789abcdef0123456789abcdef01234567", staff_user.pk],
        )
    from django.apps import apps

    editor = SimpleNamespace(connection=connection, quote_name=quote)
    migration.hash_legacy_tokens(apps, editor)

    assert "authtoken_token" not in connection.introspection.table_names()
    assert "0123456789abcdef0123456789abcdef01234567" not in _every_stored_value()
    public_api.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert public_api.get("/api/v1/staff/requests/").status_code == 200
