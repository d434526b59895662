from django.conf import settings


def portal(request) -> dict:
    """What every page shows of the organisation, error pages included."""
    return {"organisation": settings.PORTAL_ORGANISATION_NAME}
