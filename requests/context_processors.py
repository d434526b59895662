from django.conf import settings

from requests.permissions import Abilities


def portal(request) -> dict:
    """What every page shows of the organisation, error pages included, and what the signed-in
    staff member may do (evaluated only where a template asks)."""
    from requests.mailbox import mailbox_is_demo

    return {
        "organisation": settings.PORTAL_ORGANISATION_NAME,
        "demo_mail": mailbox_is_demo(),
        "staff_can": Abilities(getattr(request, "user", None)),
        # The console links its two-factor page unless PORTAL_STAFF_2FA is off.
        "staff_two_factor": settings.PORTAL_STAFF_2FA,
    }
