import pytest


@pytest.fixture
def postgres_database():
    from tests.servers import fresh_postgres_database

    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def mariadb_database():
    from tests.servers import fresh_mariadb_database

    with fresh_mariadb_database() as url:
        yield url


@pytest.fixture
def redis_server_url():
    from tests.servers import redis_url

    return redis_url()


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="dpo", password="correct horse battery", is_staff=True
    )


@pytest.fixture
def staff_api(staff_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    token = Token.objects.create(user=staff_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def public_api():
    from rest_framework.test import APIClient

    return APIClient()
