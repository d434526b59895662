from rest_framework.throttling import AnonRateThrottle


class PublicFileThrottle(AnonRateThrottle):
    """Filing is by client address; honest people file a handful of requests, not dozens."""

    scope = "public_file"


class PublicVerifyThrottle(AnonRateThrottle):
    scope = "public_verify"
