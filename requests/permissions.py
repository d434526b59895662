"""Who may do what on the staff side: the one place where roles become permissions.

Roles are the Django groups `dpo`, `reviewer` and `auditor` (DESIGN.md section 5). Every staff
page and every staff API endpoint asks one of the `access_*` functions below, so a rule changes
here and nowhere else.

- `dpo`: everything, including connected stores and staff accounts;
- `reviewer`: reads requests and decides them (approve, reject, extend, ask, retry, confirm,
  assign, write internal notes), and reveals a request's masked identity (audited);
- `auditor`: reads requests, their timelines, certificates and stores; changes nothing, does
  not download people's data packages and sees identities masked only.

Defaults, chosen so nobody gains power by accident:
- a superuser is a DPO (the account `createsuperuser` makes must be able to set everything up);
- a staff user (`is_staff`) in none of the groups is an auditor: read only until a DPO gives them
  a role;
- a user who is not staff, or not active, has no role, whatever their groups.
When a user is in several groups, the most powerful one counts.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

DPO = "dpo"
REVIEWER = "reviewer"
AUDITOR = "auditor"
# Most powerful first: the first one a user holds is their role.
ROLES = (DPO, REVIEWER, AUDITOR)
ROLE_LABELS = {DPO: _("DPO"), REVIEWER: _("Reviewer"), AUDITOR: _("Auditor")}
ROLE_DESCRIPTIONS = {
    DPO: _("Everything, including connected stores and staff accounts."),
    REVIEWER: _("Reads and decides requests."),
    AUDITOR: _("Reads requests, timelines and stores; changes nothing."),
}

# The group names a user belongs to, kept on the user object for the length of one request.
_CACHE_ATTRIBUTE = "_portal_group_names"


def _group_names(user) -> frozenset[str]:
    names = getattr(user, _CACHE_ATTRIBUTE, None)
    if names is None:
        # .all() so a prefetched list of users costs no query per user.
        names = frozenset(group.name for group in user.groups.all() if group.name in ROLES)
        setattr(user, _CACHE_ATTRIBUTE, names)
    return names


def forget_role(user) -> None:
    """Drop the cached groups after a user's groups changed in this request."""
    if hasattr(user, _CACHE_ATTRIBUTE):
        delattr(user, _CACHE_ATTRIBUTE)


def user_role(user) -> str | None:
    """The user's role on the staff side, or None when they have no business there."""
    if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
        return None
    if user.is_superuser:
        return DPO
    names = _group_names(user)
    return next((role for role in ROLES if role in names), AUDITOR)


def role_group(role: str) -> Group:
    """The group of a role, made on first use (also made by `migrate`, see apps.py)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    group, _created = Group.objects.get_or_create(name=role)
    return group


def ensure_role_groups() -> None:
    for role in ROLES:
        role_group(role)


def _has(user, *roles: str) -> bool:
    return user_role(user) in roles


# --- the rules ---------------------------------------------------------------------------------


def access_staff_console(user) -> bool:
    """Sign in to the console at all."""
    return _has(user, *ROLES)


def access_view_requests(user) -> bool:
    """The queue, a request's page and timeline, its preview and certificate."""
    return _has(user, *ROLES)


def access_decide_request(user) -> bool:
    """Approve, reject, extend, ask for information, retry, confirm a manual task."""
    return _has(user, DPO, REVIEWER)


def access_reveal_identity(user) -> bool:
    """See a request's identity in clear (each time audited). Auditors check that requests were
    handled, which the masked identity and the timeline show; they never need the person's
    details, so only who handles requests may reveal them."""
    return _has(user, DPO, REVIEWER)


def access_download_package(user) -> bool:
    """Download a person's access package: their data in bulk, so only for who handles it."""
    return _has(user, DPO, REVIEWER)


def access_read_demo_mail(user) -> bool:
    """The demo's kept mail (no EMAIL_HOST): it holds people's codes and addresses, so only for
    who handles their requests."""
    return _has(user, DPO, REVIEWER)


def access_view_stores(user) -> bool:
    """List connected stores and read their maps (never their credentials)."""
    return _has(user, *ROLES)


def access_manage_stores(user) -> bool:
    """Connect, change, check, disable and delete stores; edit their maps."""
    return _has(user, DPO)


def access_manage_portal(user) -> bool:
    """Any other change to the portal's setup: what a staff endpoint needs unless it says less."""
    return _has(user, DPO)


def access_manage_users(user) -> bool:
    """See staff accounts and give them roles."""
    return _has(user, DPO)


def access_view_dashboard(user) -> bool:
    return _has(user, *ROLES)


class Abilities:
    """What a user may do, for templates: `{% if staff_can.manage_users %}` asks
    `access_manage_users(user)`, only when the template needs it."""

    def __init__(self, user):
        self._user = user

    @property
    def role(self) -> str | None:
        return user_role(self._user)

    @property
    def role_label(self) -> str:
        role = self.role
        return str(ROLE_LABELS[role]) if role else ""

    def __getattr__(self, name: str) -> bool:
        rule = globals().get(f"access_{name}") if not name.startswith("_") else None
        if rule is None:
            raise AttributeError(name)
        return rule(self._user)
