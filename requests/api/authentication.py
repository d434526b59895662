"""Staff API authentication: `Authorization: Token <key>`, looked up by the key's digest."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from requests.services.tokens import token_user


class HashedTokenAuthentication(TokenAuthentication):
    """DRF's token header and answers, over `requests.models.ApiToken` (no plaintext keys)."""

    keyword = "Token"

    def authenticate_credentials(self, key):
        user = token_user(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return (user, None)
