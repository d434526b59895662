"""The stores pages (`/staff/stores/`), for DPOs only: connected stores with their health, adding
one with discovery, reviewing and editing its map, the connection check, enabling, disabling and
deleting, and the store's history from the audit trail.

Everything goes through `requests.services.stores`, the same validation and audit events as the
API. A store's URL is asked for in a password field and never shown back, and check results are
the services' codes and words, which name no host, port or path.
"""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from requests import permissions, store_selectors
from requests.models import ConnectedStore, StoreKind
from requests.services import store_health, store_lifecycle, stores
from requests.services.audit import actor_for_user
from requests.services.errors import NotFound, ServiceError
from requests.views.console import staff_only, staff_page

dpo_only = staff_only(permissions.access_manage_stores)

# How a map problem names its place: "line 6: ..." or "line 3, column 9: ...".
WHERE = re.compile(r"^line \d+(?:, column (?P<column>\d+))?: ")

# Taller maps scroll inside their box.
MAP_BOX_MAX_ROWS = 60

ROLE_LABELS = {
    "person": _("People"),
    "owned": _("Owned by people"),
    "reference": _("Reference data"),
}
ACTION_LABELS = {
    "delete": _("Delete"),
    "mask": _("Mask"),
    "hold": _("Keep (legal hold)"),
}
FALLBACK_LABELS = {
    "mask": _("mask when other records still point at it"),
    "nullify": _("set to empty when other records still point at it"),
    "keep": _("keep when other records still point at it"),
}
FOLLOW_LABELS = {
    "children": _("finds the records pointing here"),
    "parent": _("finds the record pointed at"),
    "both": _("followed both ways"),
    "none": _("not followed"),
}
REFERENCE_KIND_LABELS = {
    "owner": _("owner: the record belongs to it"),
    "mention": _("mention only: not the person's record"),
}


class StoreAddForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=63,
        help_text=_("Lower-case letters, digits, '-' or '_', as requests and the API name it."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        error_messages={"required": _("Enter a name for the store.")},
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=StoreKind.choices,
        error_messages={"invalid_choice": _("Choose one of the kinds given.")},
    )
    url = forms.CharField(
        label=_("Connection URL"),
        required=False,
        max_length=2000,
        strip=False,
        help_text=_(
            "Kept encrypted and never shown again, here or anywhere. Not needed for a manual "
            "system."
        ),
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
    )
    secret = forms.CharField(
        label=_("Signing secret (webhook stores)"),
        required=False,
        max_length=500,
        strip=False,
        help_text=_("The downstream service checks every call with it. Never shown again."),
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
    )
    discover = forms.BooleanField(
        label=_("Draft the map from the store's schema (discovery)"),
        required=False,
        initial=True,
    )


class MapForm(forms.Form):
    map = forms.CharField(
        label=_("Map (YAML)"),
        required=False,
        strip=False,
        help_text=_("Saved only when it is valid; every problem is listed with its line."),
        widget=forms.Textarea(
            attrs={"rows": 24, "spellcheck": "false", "class": "map-yaml", "autocomplete": "off"}
        ),
    )


def _store_or_404(name: str) -> ConnectedStore:
    try:
        return stores.store_get(name=name)
    except NotFound:
        raise Http404 from None


# --- the list and the add form ---------------------------------------------------------------


@never_cache
@dpo_only
@require_http_methods(["GET", "HEAD", "POST"])
def store_list(request):
    form = StoreAddForm(prefix="new")
    status = 200
    if request.method == "POST":
        form = StoreAddForm(request.POST, prefix="new")
        if form.is_valid():
            data = form.cleaned_data
            try:
                store = stores.store_create(
                    name=data["name"],
                    kind=data["kind"],
                    url=data["url"],
                    secret=data["secret"],
                    discover=data["discover"],
                    actor=actor_for_user(request.user),
                )
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                if data["discover"]:
                    messages.success(
                        request,
                        gettext(
                            "Store %(name)s added. Discovery drafted its map: review it below "
                            "and edit it if anything is wrong."
                        )
                        % {"name": store.name},
                    )
                else:
                    messages.success(
                        request,
                        gettext("Store %(name)s added. Give it a map below.")
                        % {"name": store.name},
                    )
                return redirect("staff-store", name=store.name)
        status = 400
    return staff_page(
        request,
        "staff/stores.html",
        {"rows": store_selectors.stores_with_health(), "form": form},
        status=status,
    )


# --- one store ---------------------------------------------------------------------------------


def _map_view(store: ConnectedStore) -> dict:
    """The saved map as rows for the review table, or the problems that stop it being read."""
    try:
        parsed = stores.store_map(store)
    except ServiceError as exc:
        return {"collections": [], "notes": [], "invalid": exc.message}
    rows = []
    for name, collection in parsed.collections.items():
        role = str(getattr(collection, "effective_role", "") or "")
        rows.append(
            {
                "name": name,
                "role": ROLE_LABELS.get(role, role),
                "role_set": getattr(collection, "role", None) is not None,
                "key": list(collection.key),
                "identities": sorted(collection.identity_fields().items()),
                "references": [
                    _reference_row(field, reference)
                    for field, reference in sorted(collection.reference_fields().items())
                ],
                "action": ACTION_LABELS.get(str(collection.erasure.action), ""),
                "fallback": FALLBACK_LABELS.get(str(collection.erasure.fallback), ""),
                "basis": collection.erasure.basis or "",
            }
        )
    return {"collections": rows, "notes": list(parsed.notes), "invalid": ""}


def _reference_row(field: str, reference) -> dict:
    target = f"{reference.collection}.{reference.field}"
    if reference.store:
        target = f"{reference.store}: {target}"
    kind = str(getattr(reference, "kind", "") or "")
    return {
        "field": field,
        "target": target,
        "follow": FOLLOW_LABELS.get(str(reference.follow), str(reference.follow)),
        "kind": REFERENCE_KIND_LABELS.get(kind, kind),
        "nullable": reference.nullable,
        "inferred": reference.inferred,
    }


def _problem_rows(text: str, problems: list[tuple[int | None, str]]) -> list[dict]:
    """Each problem with the line it is about, quoted from the text sent, so it reads in place
    without any script."""
    lines = text.splitlines()
    rows = []
    for line, message in problems:
        column = None
        where = WHERE.match(message) if line else None
        if where:  # the row shows the line itself; the text keeps the rest
            column = where.group("column")
            message = message[where.end() :]
        rows.append(
            {
                "line": line,
                "column": column,
                "text": message,
                "source": lines[line - 1] if line and 0 < line <= len(lines) else None,
            }
        )
    return rows


def _detail(
    request,
    store: ConnectedStore,
    *,
    map_form: MapForm | None = None,
    problems: list[dict] | None = None,
    check=None,
    delete_error: str = "",
    status: int = 200,
):
    if map_form is None:
        map_form = MapForm(initial={"map": store.map_yaml}, prefix="edit")
    # The box is as tall as the map (within reason), so its lines need no inner scrolling.
    lines = (map_form["map"].value() or "").count("\n") + 2
    map_form.fields["map"].widget.attrs["rows"] = min(max(lines, 12), MAP_BOX_MAX_ROWS)
    if problems:
        # Screen readers announce the problems with the text box they are about.
        box = map_form["map"].auto_id
        map_form.fields["map"].widget.attrs["aria-describedby"] = (
            f"{box}_helptext {box}_error map-problems"
        )
    return staff_page(
        request,
        "staff/stores_detail.html",
        {
            "store": store,
            "map": _map_view(store),
            "map_form": map_form,
            "problems": problems or [],
            "check": check,
            "delete_error": delete_error,
            "last_failure_at": store_selectors.store_last_failure(store),
            "history": [_history_row(event) for event in store_selectors.store_history(store)],
        },
        status=status,
    )


@never_cache
@dpo_only
@require_http_methods(["GET", "HEAD"])
def store_detail(request, name: str):
    return _detail(request, _store_or_404(name))


@never_cache
@dpo_only
@require_http_methods(["POST"])
def store_map_save(request, name: str):
    store = _store_or_404(name)
    form = MapForm(request.POST, prefix="edit")
    if not form.is_valid():  # pragma: no cover - a CharField that may be empty is always valid
        return _detail(request, store, map_form=form, status=400)
    # Browsers send a text box's lines ending in CR LF; the map keeps the LF the API uses.
    text = form.cleaned_data["map"].replace("\r\n", "\n")
    try:
        stores.store_update_map(store=store, map_yaml=text, actor=actor_for_user(request.user))
    except stores.InvalidMap as exc:
        form.add_error(
            "map",
            gettext("The map was not saved: %(count)s problem(s), listed below.")
            % {"count": len(exc.problems)},
        )
        return _detail(
            request,
            store,
            map_form=form,
            problems=_problem_rows(text, exc.problems),
            status=exc.status_code,
        )
    except ServiceError as exc:
        form.add_error("map", exc.message)
        return _detail(request, store, map_form=form, status=exc.status_code)
    messages.success(request, gettext("The map is saved."))
    return redirect("staff-store", name=store.name)


@never_cache
@dpo_only
@require_http_methods(["POST"])
def store_check_run(request, name: str):
    store = _store_or_404(name)
    result = store_health.store_check(store=store, actor=actor_for_user(request.user))
    store.refresh_from_db()
    return _detail(request, store, check=result)


@never_cache
@dpo_only
@require_http_methods(["POST"])
def store_enabled(request, name: str):
    store = _store_or_404(name)
    wanted = request.POST.get("enabled")
    if wanted not in ("true", "false"):
        return _detail(request, store, status=400)
    store = store_lifecycle.store_set_enabled(
        store=store, enabled=wanted == "true", actor=actor_for_user(request.user)
    )
    if store.enabled:
        messages.success(request, gettext("The store is enabled: new requests search it."))
    else:
        messages.success(
            request,
            gettext(
                "The store is disabled: requests approved from now on leave it out; work it "
                "already has still runs."
            ),
        )
    return redirect("staff-store", name=store.name)


@never_cache
@dpo_only
@require_http_methods(["POST"])
def store_remove(request, name: str):
    store = _store_or_404(name)
    try:
        removed = store_lifecycle.store_delete(store=store, actor=actor_for_user(request.user))
    except store_lifecycle.StoreInUse as exc:
        return _detail(request, store, delete_error=exc.message, status=exc.status_code)
    if removed:
        messages.success(request, gettext("Store %(name)s deleted.") % {"name": name})
    else:
        messages.success(
            request,
            gettext(
                "Store %(name)s deleted. Past requests used it, so it is kept for their records, "
                "disabled and with its connection wiped; its name stays taken."
            )
            % {"name": name},
        )
    return redirect("staff-stores")


# --- history -----------------------------------------------------------------------------------


def _actor_text(actor: str) -> str:
    if actor.startswith("staff:"):
        return actor.removeprefix("staff:")
    return gettext("The portal")


def _history_row(event) -> dict:
    details = event.details or {}
    who = _actor_text(event.actor)
    action = event.action
    if action == "store.created":
        count = details.get("collections", 0)
        if details.get("discovered"):
            text = gettext(
                "%(who)s added the store; discovery drafted a map of %(count)s collection(s)."
            )
        elif count:
            text = gettext("%(who)s added the store with a map of %(count)s collection(s).")
        else:
            text = gettext("%(who)s added the store without a map.")
        text = text % {"who": who, "count": count}
    elif action == "store.map_updated":
        text = gettext("%(who)s saved the map (%(count)s collection(s)).") % {
            "who": who,
            "count": details.get("collections", 0),
        }
    elif action in ("store.enabled", "store.disabled"):
        enabled = action == "store.enabled"
        if details.get("changed", True):
            text = (
                gettext("%(who)s enabled the store.")
                if enabled
                else gettext("%(who)s disabled the store.")
            )
        elif enabled:
            text = gettext("%(who)s enabled the store (it already was).")
        else:
            text = gettext("%(who)s disabled the store (it already was).")
        text = text % {"who": who}
    elif action == "store.deleted":
        if details.get("kept_for_records"):
            text = gettext(
                "%(who)s deleted the store; it is kept for the records of past requests."
            )
        else:
            text = gettext("%(who)s deleted the store.")
        text = text % {"who": who}
    elif action == "store.checked":
        if details.get("ok"):
            text = gettext("%(who)s checked the connection: it passed (%(code)s).")
        else:
            text = gettext("%(who)s checked the connection: it failed (%(code)s).")
        text = text % {"who": who, "code": details.get("code", "")}
    elif action == "store.changed":
        text = gettext("%(who)s changed the store in the admin site.") % {"who": who}
    else:
        text = gettext("%(who)s: %(action)s.") % {"who": who, "action": action}
    return {"at": event.created_at, "text": text, "sequence": event.sequence}
