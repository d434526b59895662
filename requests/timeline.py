"""A request's audit trail as sentences staff read, in their own language.

The audit trail stores machine names (`request.approved`) and details made for proof (ids, counts,
states). This module turns each event into one translated sentence, the actor into a name, and
any counts into a small table, for the request page. It reads; it never changes the trail. An
action it does not know yet still reads as words, never as its stored name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import formats
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from requests.models import AuditEvent
from requests.services.audit import SUBJECT, SYSTEM
from requests.states import Kind, RejectionReason, Status

STAFF_PREFIX = "staff:"

# Count columns in the order a DPO reads them; the words are the certificate's (see
# templates/erasure/certificate.html), so a timeline row and the certificate agree.
COUNT_COLUMNS = ("found", "files", "deleted", "masked", "nullified", "held", "kept", "remaining")


def _count_label(name: str) -> str:
    return {
        "found": _("Found"),
        "files": _("Files"),
        "deleted": _("Deleted"),
        "masked": _("Masked"),
        "nullified": _("Set to null"),
        "held": _("Held"),
        "kept": _("Kept"),
        "remaining": _("Left"),
    }.get(name) or words(name)


def identity_type_label(identity_type: str) -> str:
    return {
        "email": _("Email address"),
        "phone": _("Phone number"),
        "name": _("Name"),
        "account_id": _("Account identifier"),
    }.get(identity_type) or words(identity_type)


def method_label(method: str) -> str:
    return {
        "email_code": _("a code sent by email"),
        "email_link": _("a link sent by email"),
        "sms_code": _("a code sent by text message"),
        "staff": _("staff who saw proof"),
        "code": _("a code sent by email"),
        "link": _("a link sent by email"),
    }.get(method) or words(method)


def words(name: str) -> str:
    """A stored name as words: `request.note_added` -> `Request: note added`."""
    text = str(name).replace("_", " ").replace(".", ": ").strip()
    return text[:1].upper() + text[1:]


@dataclass
class CountsTable:
    """Counts per collection: a row per collection, a column per kind of count."""

    caption: str
    columns: list[str]
    rows: list[tuple[str, list[int]]]


@dataclass
class Entry:
    sequence: int | None  # None until the event is sealed into the chain, just after its commit
    when: datetime
    actor: str
    sentence: str
    tables: list[CountsTable] = field(default_factory=list)


def counts_table(counts: Any, *, caption: str) -> CountsTable | None:
    """A table from `{collection: {"found": n, ...}}` (job counts) or `{collection: n}`; None
    when nothing in it is a count (a manual task's instructions, a staff note)."""
    if not isinstance(counts, dict):
        return None
    if isinstance(counts.get("collections"), dict):
        # An erasure's result: the per-collection counts sit beside its totals and notes.
        counts = counts["collections"]
    per: dict[str, dict[str, int]] = {}
    for collection, value in counts.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            per[str(collection)] = {"found": value}
        elif isinstance(value, dict):
            numbers = {
                k: v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)
            }
            if numbers:
                per[str(collection)] = numbers
    if not per:
        return None
    present = {name for numbers in per.values() for name in numbers}
    names = [name for name in COUNT_COLUMNS if name in present]
    names += sorted(present - set(names))
    return CountsTable(
        caption=caption,
        columns=[_count_label(name) for name in names],
        rows=[
            (collection, [numbers.get(name, 0) for name in names])
            for collection, numbers in sorted(per.items())
        ],
    )


def _date(value: Any) -> str:
    parsed = value if isinstance(value, date) else parse_date(str(value or ""))
    return formats.date_format(parsed, "DATE_FORMAT") if parsed else "\N{EN DASH}"


def _status(value: Any) -> str:
    try:
        return str(Status(value).label)
    except ValueError:
        return words(str(value))


def _kind(value: Any) -> str:
    return {Kind.ACCESS: _("access"), Kind.ERASURE: _("erasure")}.get(value) or words(str(value))


def _types(values: Any) -> str:
    return ", ".join(identity_type_label(t) for t in values or []) or "\N{EN DASH}"


def _int(details: dict, key: str) -> int:
    value = details.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# Each function turns an event's details into (sentence, tables).
Formatter = Callable[[dict], tuple[str, list[CountsTable]]]


def _filed(d: dict) -> tuple[str, list]:
    sentence = _("Request for %(kind)s filed, with %(types)s.") % {
        "kind": _kind(d.get("kind")),
        "types": _types(d.get("identity_types")),
    }
    earlier = _int(d, "earlier_requests_by_subject")
    if earlier:
        sentence += " " + ngettext(
            "The person had made %(count)d request before.",
            "The person had made %(count)d requests before.",
            earlier,
        ) % {"count": earlier}
    return sentence, []


def _verified(d: dict) -> tuple[str, list]:
    return _("The person confirmed their email address with %(method)s.") % {
        "method": method_label(str(d.get("method", "")))
    }, []


def _approved(d: dict) -> tuple[str, list]:
    if d.get("automatic"):
        return _(
            "Request approved automatically by the approval policy (%(policy)s); "
            "processing started."
        ) % {"policy": d.get("policy", "")}, []
    return _("Request approved; processing started."), []


def _auto_approval_withheld(d: dict) -> tuple[str, list]:
    from requests.services.auto_approval import withheld_reason

    reasons = d.get("reasons") if isinstance(d.get("reasons"), list) else []
    return _(
        "Left for staff to review, not approved by the approval policy (%(policy)s): %(reasons)s."
    ) % {
        "policy": d.get("policy", ""),
        "reasons": "; ".join(withheld_reason(str(code)) for code in reasons) or "\N{EN DASH}",
    }, []


def _identity_verified(d: dict) -> tuple[str, list]:
    return _("%(type)s verified with %(method)s.") % {
        "type": identity_type_label(str(d.get("type", ""))),
        "method": method_label(str(d.get("method", ""))),
    }, []


def _confirmed_by_staff(d: dict) -> tuple[str, list]:
    return _("Identity confirmed by staff for: %(types)s (see the note kept with it).") % {
        "types": _types(d.get("types"))
    }, []


def _rejected(d: dict) -> tuple[str, list]:
    reason = d.get("reason", "")
    try:
        label = str(RejectionReason(reason).label)
    except ValueError:
        label = words(str(reason))
    return _("Request rejected. Legal reason: %(reason)s.") % {"reason": label}, []


def _extended(d: dict) -> tuple[str, list]:
    months = _int(d, "months")
    return ngettext(
        "Deadline extended by %(count)d month; the request is now due on %(date)s.",
        "Deadline extended by %(count)d months; the request is now due on %(date)s.",
        months,
    ) % {"count": months, "date": _date(d.get("due_on"))}, []


def _retried(d: dict) -> tuple[str, list]:
    jobs = _int(d, "jobs")
    if not jobs:
        return _("Retried: the last step runs again."), []
    return ngettext(
        "Retried: %(count)d failed job runs again.",
        "Retried: %(count)d failed jobs run again.",
        jobs,
    ) % {"count": jobs}, []


def _information_received(d: dict) -> tuple[str, list]:
    if "reply" in d:
        return ngettext(
            "The person replied on their status page (%(count)d character); the request is "
            "back in review.",
            "The person replied on their status page (%(count)d characters); the request is "
            "back in review.",
            _int(d, "reply_characters"),
        ) % {"count": _int(d, "reply_characters")}, []
    return _("The information asked for arrived; the request is back in review."), []


def _assigned(d: dict) -> tuple[str, list]:
    if d.get("assignee"):
        return _("Assigned to %(name)s.") % {"name": d["assignee"]}, []
    return _("No longer assigned to anyone."), []


def _job_held(d: dict) -> tuple[str, list]:
    store = d.get("store", "")
    if d.get("held_for") == "access":
        return _("%(store)s: held until the same person's access package is made.") % {
            "store": store
        }, []
    return _("%(store)s: held until the stores erased before it are done.") % {"store": store}, []


def _job_done(d: dict) -> tuple[str, list]:
    store = d.get("store", "")
    if d.get("recipient") == "done":
        sentence = _("%(store)s: the recipient confirmed its erasure.") % {"store": store}
        erased = d.get("erased")
        if isinstance(erased, int):
            sentence += " " + ngettext(
                "%(count)d record erased.", "%(count)d records erased.", erased
            ) % {"count": erased}
        return sentence, []
    if d.get("kind") == Kind.ERASURE:
        sentence = _("%(store)s: erasure done.") % {"store": store}
    else:
        sentence = _("%(store)s: search done.") % {"store": store}
    table = counts_table(d.get("counts"), caption=_("Records in %(store)s") % {"store": store})
    return sentence, [table] if table else []


def _job_waiting(d: dict) -> tuple[str, list]:
    store = d.get("store", "")
    table = counts_table(d.get("counts"), caption=_("Records in %(store)s") % {"store": store})
    return _("%(store)s: waiting for someone to finish the work by hand or downstream.") % {
        "store": store
    }, [table] if table else []


def _job_failed(d: dict) -> tuple[str, list]:
    return _("%(store)s: the job failed (%(reason)s).") % {
        "store": d.get("store", ""),
        "reason": d.get("reason") or _("no reason given"),
    }, []


def _retry_scheduled(d: dict) -> tuple[str, list]:
    return _(
        "%(store)s: attempt %(attempt)d did not succeed; it is tried again in %(seconds)d s."
    ) % {
        "store": d.get("store", ""),
        "attempt": _int(d, "attempt"),
        "seconds": _int(d, "in_seconds"),
    }, []


def _sweep_failed(d: dict) -> tuple[str, list]:
    tables = []
    for store, per in sorted((d.get("remaining") or {}).items()):
        table = counts_table(
            {name: {"remaining": n} for name, n in (per or {}).items()},
            caption=_("Left in %(store)s") % {"store": store},
        )
        if table:
            tables.append(table)
    return _("The verification search after the erasure found records left."), tables


def _erasure_ordered(d: dict) -> tuple[str, list]:
    order = d.get("order") or {}
    parts = [
        _("%(store)s after %(before)s") % {"store": store, "before": ", ".join(befores)}
        for store, befores in sorted(order.items())
    ]
    return _("Erasure order set: %(order)s.") % {"order": "; ".join(parts) or "\N{EN DASH}"}, []


def _package_created(d: dict) -> tuple[str, list]:
    records, files, stores = _int(d, "records"), _int(d, "files"), _int(d, "stores")
    return (
        ngettext(
            "Access package made: %(records)d record",
            "Access package made: %(records)d records",
            records,
        )
        % {"records": records}
        + ", "
        + ngettext("%(files)d file", "%(files)d files", files) % {"files": files}
        + ", "
        + ngettext("from %(stores)d store.", "from %(stores)d stores.", stores)
        % {"stores": stores},
        [],
    )


def _package_downloaded(d: dict) -> tuple[str, list]:
    if d.get("via") == "staff":
        return _("Access package downloaded by staff."), []
    return _("Access package downloaded by the person, with their download code."), []


def _attempts(message: str) -> Formatter:
    def formatter(d: dict) -> tuple[str, list]:
        sentence = message % {"count": _int(d, "attempts") or _int(d, "attempt")}
        if d.get("locked"):
            sentence += " " + _("No more codes are accepted until a new one is sent.")
        return sentence, []

    return formatter


def _fixed(message: str) -> Formatter:
    return lambda d: (message, [])


def _formatters() -> dict[str, Formatter]:
    # Built per call so the sentences are translated into the language active at that moment.
    return {
        "request.filed": _filed,
        "request.verified": _verified,
        "identity.verified": _identity_verified,
        "identity.confirmed_by_staff": _confirmed_by_staff,
        "identity.code_sent": lambda d: (
            _("A code was sent to the phone number by text message."),
            [],
        ),
        "identity.code_failed": _attempts(
            _("A wrong text message code was typed (try %(count)d).")
        ),
        "verification.failed": _attempts(_("A wrong email code was typed (try %(count)d).")),
        "verification.resend_requested": _fixed(_("The person asked for the email code again.")),
        "verification.send_refused": _fixed(_("The verification email could not be sent.")),
        "request.identity_revealed": lambda d: (
            _("Identity shown in clear: %(types)s.") % {"types": _types(d.get("identity_types"))},
            [],
        ),
        "request.approved": _approved,
        "request.auto_approval_withheld": _auto_approval_withheld,
        "request.rejected": _rejected,
        "request.extended": _extended,
        "request.information_requested": _fixed(_("More information asked of the person.")),
        "request.information_received": _information_received,
        "request.cancelled": _fixed(_("The person withdrew the request.")),
        "request.completed": _fixed(_("Request completed; the person is told.")),
        "request.needs_attention": lambda d: (
            _("Staff must act: %(reason)s.") % {"reason": d.get("reason") or "\N{EN DASH}"},
            [],
        ),
        "request.expired": _fixed(
            _("Request expired: never verified in time; its identity data were purged.")
        ),
        "request.identity_purged": lambda d: (
            _("Identity data purged %(days)d days after the request closed.")
            % {"days": _int(d, "retention_days")},
            [],
        ),
        "request.retried": _retried,
        "request.resumed": lambda d: (
            _("Processing resumed once %(store)s was confirmed.") % {"store": d.get("confirmed")},
            [],
        ),
        "request.held_for_access": lambda d: (
            _("Erasure held until the access request %(reference)s has its package.")
            % {"reference": d.get("access_request", "")},
            [],
        ),
        "request.released_for_erasure": _fixed(_("Erasure released: its jobs are queued.")),
        "request.erasure_ordered": _erasure_ordered,
        "request.assigned": _assigned,
        "request.note_added": _fixed(_("Internal note added.")),
        "job.held": _job_held,
        "job.released": lambda d: (
            _("%(store)s: released; its job is queued.") % {"store": d.get("store", "")},
            [],
        ),
        "job.restarted": lambda d: (
            _("%(store)s: its job starts again.") % {"store": d.get("store", "")},
            [],
        ),
        "job.claimed": lambda d: (
            _("%(store)s: a worker started (attempt %(attempt)d).")
            % {"store": d.get("store", ""), "attempt": _int(d, "attempt")},
            [],
        ),
        "job.done": _job_done,
        "job.waiting": _job_waiting,
        "job.failed": _job_failed,
        "job.retry_scheduled": _retry_scheduled,
        "job.confirmed": lambda d: (
            _("%(store)s: confirmed done by hand by staff.") % {"store": d.get("store", "")},
            [],
        ),
        "erasure.sweep_failed": _sweep_failed,
        "package.created": _package_created,
        "package.downloaded": _package_downloaded,
        "package.code_requested": _fixed(_("The person asked for a download code.")),
        "package.download_refused": _attempts(
            _("A wrong download code was typed (try %(count)d).")
        ),
        "package.deleted": lambda d: (
            ngettext(
                "Access package deleted after %(count)d download.",
                "Access package deleted after %(count)d downloads.",
                _int(d, "downloads"),
            )
            % {"count": _int(d, "downloads")},
            [],
        ),
    }


def known_actions() -> frozenset[str]:
    """The audit actions that read as their own sentence (any other reads as its words)."""
    return frozenset(_formatters())


def _status_change(d: dict) -> str:
    if "from" in d and "to" in d and d["from"] in Status.values and d["to"] in Status.values:
        return " " + _("Status: %(from)s → %(to)s.") % {
            "from": _status(d["from"]),
            "to": _status(d["to"]),
        }
    return ""


def actor_names(actors: Iterable[str]) -> dict[str, str]:
    """Audit actors as names: the person, the portal, or the staff member's full name."""
    usernames = {a[len(STAFF_PREFIX) :] for a in actors if a.startswith(STAFF_PREFIX)}
    users = {
        user.get_username(): user
        for user in get_user_model().objects.filter(username__in=usernames)
    }
    names = {}
    for actor in actors:
        if actor == SUBJECT:
            names[actor] = _("The person")
        elif actor == SYSTEM:
            names[actor] = _("The portal")
        elif actor.startswith(STAFF_PREFIX):
            username = actor[len(STAFF_PREFIX) :]
            user = users.get(username)
            full = user.get_full_name().strip() if user is not None else ""
            names[actor] = f"{full} ({username})" if full else username
        else:
            names[actor] = words(actor)
    return names


def describe(event: AuditEvent, formatters: dict[str, Formatter] | None = None) -> Entry:
    details = event.details if isinstance(event.details, dict) else {}
    formatter = (formatters or _formatters()).get(event.action)
    if formatter is None:
        sentence, tables = words(event.action) + ".", []
    else:
        sentence, tables = formatter(details)
    if event.action.startswith("request.") and event.action != "request.filed":
        sentence += _status_change(details)
    return Entry(
        sequence=event.sequence,
        when=event.created_at,
        actor=event.actor,
        sentence=sentence,
        tables=tables,
    )


def timeline(events: Iterable[AuditEvent]) -> list[Entry]:
    """The events as entries, oldest first, each with its actor's name."""
    events = list(events)
    formatters = _formatters()
    names = actor_names({event.actor for event in events})
    entries = []
    for event in events:
        entry = describe(event, formatters)
        entry.actor = names.get(event.actor, event.actor)
        entries.append(entry)
    return entries
