"""Rate limits key on the real client address (X-Forwarded-For only through trusted proxies),
and also on the identity and the request reference; counted in Redis or the database cache."""

import ipaddress

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse

from portal.env import ConfigurationError, env_rate, env_trusted_proxies
from requests.models import DataRequest

pytestmark = pytest.mark.django_db

FILE = "/api/v1/requests/"


@pytest.fixture
def limits(settings):
    """Lower one or more limits for the test, on an empty cache.

    The tests use day-long windows, so that none runs across the end of a window and sees its
    count start again."""

    def _set(**rates):
        settings.PORTAL_RATE_LIMITS = {**settings.PORTAL_RATE_LIMITS, **rates}

    cache.clear()
    yield _set
    cache.clear()


def _file(public_api, email, *, remote="203.0.113.7", forwarded=None, **identity):
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return public_api.post(
        FILE, {"kind": "access", "identity": {"email": email, **identity}}, format="json", **headers
    )


# The client's address


def test_without_trusted_proxies_a_forged_forwarded_for_does_not_escape_the_limit(
    public_api, limits
):
    limits(file_per_address=(2, 86400))

    statuses = [
        _file(public_api, f"p{i}@example.com", forwarded=f"198.51.100.{i}").status_code
        for i in range(3)
    ]

    assert statuses == [201, 201, 429]


def test_behind_one_trusted_proxy_each_client_has_its_own_limit(public_api, limits, settings):
    settings.PORTAL_TRUSTED_PROXIES = 1
    limits(file_per_address=(1, 86400))

    first = _file(public_api, "a@example.com", remote="10.0.0.2", forwarded="198.51.100.1")
    second = _file(public_api, "b@example.com", remote="10.0.0.2", forwarded="198.51.100.2")
    again = _file(public_api, "c@example.com", remote="10.0.0.2", forwarded="198.51.100.1")

    assert (first.status_code, second.status_code, again.status_code) == (201, 201, 429)


def test_behind_one_trusted_proxy_a_forged_leftmost_address_is_ignored(
    public_api, limits, settings
):
    settings.PORTAL_TRUSTED_PROXIES = 1
    limits(file_per_address=(1, 86400))

    # The proxy appends what it saw (198.51.100.9); what the client wrote before it is its word.
    statuses = [
        _file(
            public_api, f"p{i}@example.com", remote="10.0.0.2", forwarded=f"1.2.3.{i}, 198.51.100.9"
        ).status_code
        for i in range(2)
    ]

    assert statuses == [201, 429]


def test_trusted_proxy_networks_are_skipped_and_an_untrusted_sender_is_not_believed(
    public_api, limits, settings
):
    settings.PORTAL_TRUSTED_PROXIES = (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.0.0/16"),
    )
    limits(file_per_address=(1, 86400))

    # Through two trusted hops, the client is the first address outside the trusted networks.
    through_proxies = _file(
        public_api,
        "a@example.com",
        remote="10.0.0.2",
        forwarded="1.1.1.1, 198.51.100.4, 192.168.1.1",
    )
    same_client = _file(
        public_api, "b@example.com", remote="10.0.0.3", forwarded="198.51.100.4, 192.168.1.9"
    )
    # A sender outside the networks is the client, whatever it claims to forward for.
    direct = _file(public_api, "c@example.com", remote="203.0.113.50", forwarded="198.51.100.77")
    direct_again = _file(
        public_api, "d@example.com", remote="203.0.113.50", forwarded="198.51.100.78"
    )

    assert through_proxies.status_code == 201
    assert same_client.status_code == 429
    assert direct.status_code == 201
    assert direct_again.status_code == 429


def test_addresses_in_one_ipv6_slash_64_share_a_limit(public_api, limits):
    limits(file_per_address=(1, 86400))

    first = _file(public_api, "a@example.com", remote="2001:db8:1:2::1")
    neighbour = _file(public_api, "b@example.com", remote="2001:db8:1:2:ffff::9")
    elsewhere = _file(public_api, "c@example.com", remote="2001:db8:1:3::1")

    assert (first.status_code, neighbour.status_code, elsewhere.status_code) == (201, 429, 201)


# What a limit answers


def test_a_limited_filing_answers_429_with_retry_after_and_names_the_limit(public_api, limits):
    limits(file_per_address=(1, 86400))
    _file(public_api, "a@example.com")

    response = _file(public_api, "b@example.com")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 86400
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["limit"] == "file_per_address"
    assert "file_per_address" in error["message"]
    assert DataRequest.objects.count() == 1


def test_the_filing_page_shows_a_readable_message_and_retry_after(client, limits):
    limits(file_per_address=(1, 86400))
    data = {"kind": "access", "email": "ada@example.com"}
    client.post(reverse("request-file"), data, REMOTE_ADDR="203.0.113.8")

    response = client.post(reverse("request-file"), data, REMOTE_ADDR="203.0.113.8")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    html = response.content.decode()
    assert "Too many attempts from your connection. Please try again in" in html
    assert "file_per_address" not in html


# Per identity and per reference


def test_a_filing_that_cannot_be_read_counts_against_the_address_and_is_limited_first(
    public_api, limits
):
    limits(file_per_address=(2, 86400))
    bad = {"kind": "access", "identity": {}}
    headers = {"REMOTE_ADDR": "203.0.113.50"}

    first = public_api.post(FILE, bad, format="json", **headers)
    second = _file(public_api, "ada@example.com", remote="203.0.113.50")
    third = public_api.post(FILE, bad, format="json", **headers)
    malformed = public_api.post(FILE, "{", content_type="application/json", **headers)

    assert (first.status_code, second.status_code) == (400, 201)
    assert third.status_code == malformed.status_code == 429
    assert "file_per_address" in third.content.decode()


@pytest.mark.parametrize("store", ["locmem", "redis"])
def test_an_address_over_its_limit_does_not_use_up_the_identity_limit(
    public_api, limits, store, request
):
    if store == "redis":
        request.getfixturevalue("redis_cache")  # one script counts both limits in Redis
    limits(file_per_address=(1, 86400), file_per_identity=(2, 86400))
    assert _file(public_api, "ada@example.com", remote="203.0.113.60").status_code == 201
    for _ in range(3):
        assert _file(public_api, "ada@example.com", remote="203.0.113.60").status_code == 429

    # Counted once so far: the person can still file once more from elsewhere.
    assert _file(public_api, "ada@example.com", remote="203.0.113.61").status_code == 201
    assert _file(public_api, "ada@example.com", remote="203.0.113.62").status_code == 429


def test_filings_for_one_email_are_limited_from_any_address(public_api, limits):
    limits(file_per_identity=(2, 86400))

    statuses = [
        _file(public_api, "Victim@Example.com ", remote=f"203.0.113.{i}").status_code
        for i in range(2)
    ]
    # The same person however the address is written.
    third = _file(public_api, "victim@example.com", remote="203.0.113.99")

    assert statuses == [201, 201]
    assert third.status_code == 429
    assert "file_per_identity" in third.content.decode()


def test_the_filing_page_says_when_the_contact_details_were_used_too_often(client, limits):
    limits(file_per_identity=(1, 86400))
    data = {"kind": "access", "email": "ada@example.com"}
    client.post(reverse("request-file"), data, REMOTE_ADDR="203.0.113.8")

    response = client.post(reverse("request-file"), data, REMOTE_ADDR="198.51.100.8")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Many requests were made for these contact details recently" in (
        response.content.decode()
    )


def test_filings_for_one_phone_are_limited_whatever_email_comes_with_it(public_api, limits):
    limits(file_per_identity=(1, 86400))

    first = _file(public_api, "a@example.com", remote="203.0.113.1", phone="+33 6 12 34 56 78")
    second = _file(public_api, "b@example.com", remote="203.0.113.2", phone="+33612345678")

    assert (first.status_code, second.status_code) == (201, 429)


def test_code_guesses_on_one_request_are_limited_from_any_address(public_api, file_request, limits):
    reference = file_request()
    limits(verify_per_reference=(3, 86400))

    statuses = [
        public_api.post(
            f"/api/v1/requests/{reference}/verify/",
            {"code": "000000"},
            format="json",
            REMOTE_ADDR=f"198.51.100.{i}",
        ).status_code
        for i in range(4)
    ]
    resend = public_api.post(f"/api/v1/requests/{reference}/resend/", REMOTE_ADDR="198.51.100.50")

    assert statuses[:3] == [400, 400, 400]
    assert statuses[3] == 429
    assert resend.status_code == 429
    assert "verify_per_reference" in resend.content.decode()


def test_the_verify_page_is_limited_per_request_too(client, file_request, limits):
    reference = file_request()
    limits(verify_per_reference=(1, 86400))
    url = reverse("request-verify", args=[reference])

    client.post(url, {"code": "000000"}, REMOTE_ADDR="198.51.100.1")
    response = client.post(url, {"code": "000000"}, REMOTE_ADDR="198.51.100.2")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many attempts" in response.content.decode()


def test_asking_for_a_new_code_too_soon_names_its_limit(public_api, file_request, settings):
    from datetime import timedelta

    settings.PORTAL_RESEND_INTERVAL = timedelta(seconds=60)
    reference = file_request()

    response = public_api.post(f"/api/v1/requests/{reference}/resend/")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 61
    assert response.json()["error"]["limit"] == "resend_interval"


# Where the counts live


def test_limits_hold_in_redis_with_no_address_or_email_in_any_key(public_api, limits, redis_cache):
    server, prefix = redis_cache
    limits(file_per_address=(1, 86400), file_per_identity=(5, 86400))

    first = _file(public_api, "keys@example.com", remote="203.0.113.77", phone="+33612345678")
    second = _file(public_api, "other@example.com", remote="203.0.113.77")

    assert (first.status_code, second.status_code) == (201, 429)
    keys = [key.decode() for key in server.scan_iter(f"{prefix}:*")]
    assert any("file_per_address" in key for key in keys)
    assert any("file_per_identity" in key for key in keys)
    for key in keys:
        for clear in ("203.0.113.77", "keys@example.com", "33612345678", "other@"):
            assert clear not in key


def test_limits_hold_in_the_database_cache_of_the_embedded_default(public_api, limits, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "portal_cache",
        }
    }
    # The test database was migrated with the in-memory cache, so its table is made here.
    call_command("createcachetable", verbosity=0)
    limits(file_per_address=(1, 86400))

    first = _file(public_api, "a@example.com", remote="203.0.113.5")
    second = _file(public_api, "b@example.com", remote="203.0.113.5")

    assert (first.status_code, second.status_code) == (201, 429)


# The settings


def test_trusted_proxies_are_read_as_a_count_or_as_networks(monkeypatch):
    monkeypatch.delenv("PORTAL_TRUSTED_PROXIES", raising=False)
    assert env_trusted_proxies("PORTAL_TRUSTED_PROXIES") == 0
    monkeypatch.setenv("PORTAL_TRUSTED_PROXIES", "2")
    assert env_trusted_proxies("PORTAL_TRUSTED_PROXIES") == 2
    monkeypatch.setenv("PORTAL_TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32")
    assert env_trusted_proxies("PORTAL_TRUSTED_PROXIES") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )


@pytest.mark.parametrize("value", ["proxy.example.com", "10.0.0.0/33", "-1"])
def test_a_malformed_trusted_proxies_setting_fails_loudly_naming_it(monkeypatch, value):
    monkeypatch.setenv("PORTAL_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigurationError, match="PORTAL_TRUSTED_PROXIES"):
        env_trusted_proxies("PORTAL_TRUSTED_PROXIES")


@pytest.mark.parametrize("value", ["20", "20/fortnight", "0/hour", "many/hour"])
def test_a_malformed_rate_fails_loudly_naming_it(monkeypatch, value):
    monkeypatch.setenv("PORTAL_THROTTLE_FILE", value)
    with pytest.raises(ConfigurationError, match="PORTAL_THROTTLE_FILE"):
        env_rate("PORTAL_THROTTLE_FILE", "20/hour")


def test_rates_are_read_per_period(monkeypatch):
    monkeypatch.setenv("PORTAL_THROTTLE_FILE", "100/day")
    assert env_rate("PORTAL_THROTTLE_FILE", "20/hour") == (100, 86400)
