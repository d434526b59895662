"""Staff API authentication: `Authorization: Token <key>`, looked up by the key's digest."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication

from requests.services.staff_two_factor import second_factor_needed
from requests.services.tokens import token_user


class HashedTokenAuthentication(TokenAuthentication):
    """DRF's token header and answers, over `requests.models.ApiToken` (no plaintext keys)."""

    keyword = "Token"

    def authenticate_credentials(self, key):
        user = token_user(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return (user, None)


class VerifiedSessionAuthentication(SessionAuthentication):
    """The console's session on the API, once it passed the second factor when one is needed
    (PORTAL_STAFF_2FA); until then the API treats it as not signed in. Tokens are a factor of
    their own (possession) and are not affected."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        # The session's user, as django-otp's middleware marked it.
        user = result[0]
        verified = getattr(user, "is_verified", lambda: False)()
        if not verified and second_factor_needed(user):
            return None
        return result
