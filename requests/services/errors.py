"""Errors the services raise; the views and API turn them into clear messages and 4xx answers."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be carried out as asked. `field` names the input at fault; `extra`
    holds facts a client can act on (`attempts_left`), shown beside the message."""

    status_code = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}
        if code:
            self.code = code


class TransitionNotAllowed(ServiceError):
    status_code = 409
    code = "transition_not_allowed"


class VerificationFailed(ServiceError):
    code = "verification_failed"


class RateLimited(ServiceError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class ServiceUnavailable(ServiceError):
    """The portal's database is down or restarting: nothing was done, and a retry will work."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, *, retry_after: int, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
