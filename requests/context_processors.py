from django.conf import settings


def portal(request) -> dict:
    """What every page shows of the organisation, error pages included."""
    from requests.mailbox import mailbox_is_demo

    return {"organisation": settings.PORTAL_ORGANISATION_NAME, "demo_mail": mailbox_is_demo()}
