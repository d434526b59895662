def test_the_portal_database_is_postgresql_when_a_server_answers(settings):
    from tests.servers import IN_CI

    engine = settings.DATABASES["default"]["ENGINE"]
    if IN_CI:
        assert engine == "django.db.backends.postgresql"
    assert engine in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}
