"""Manual: a system the portal cannot reach, handled by a named person.

Paper files, a vendor's console without an API, a backup tape: the portal cannot search them, so it
gives their owner a task and waits for them to confirm. The map names the system and its owner:

    system: "Payroll (Sage, on-premises)"
    owner: payroll-lead@example.com
    collections:
      payslips:
        categories: [financial]
        info: {legal_basis: "legal obligation", retention: "6 years"}

Options (passed by the caller) may give `system` and `owner` instead, and `instructions`: the text
staff follow, such as where the system is and how to search it. The connector finds nothing
(`searchable = False`); `task()` says what the staff task shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from requests.engine.store import CheckResult, Connector
from requests.engine.storemap import Collection

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_DEFAULT_INSTRUCTIONS = {
    "access": (
        "Search {system} for every record of the person named in the request, export a copy of "
        "each, attach it to this task and confirm."
    ),
    "erasure": (
        "Erase every record of the person named in the request from {system} (or anonymise it "
        "where the law requires keeping it, and say why), then confirm what was done."
    ),
}


@dataclass(frozen=True)
class ManualTask:
    """What a staff task for this store shows: who, which system, what to do, and what it holds."""

    store: str
    system: str | None
    owner: str | None
    instructions: str
    collections: list[dict[str, Any]] = field(default_factory=list)


class ManualConnector(Connector):
    kind = "manual"
    searchable = False
    is_manual = True
    needs_url = False

    @property
    def system(self) -> str | None:
        return self.store_map.system or self.options.get("system") or None

    @property
    def owner(self) -> str | None:
        return self.store_map.owner or self.options.get("owner") or None

    def check(self) -> CheckResult:
        problems = []
        if not self.system:
            problems.append("the system's name is not set (map `system:`)")
        if not self.owner:
            problems.append("the owner's email is not set (map `owner:`)")
        elif not _EMAIL.match(self.owner):
            problems.append("the owner is not an email address")
        if problems:
            return CheckResult(False, f"manual store {self.name}: " + "; ".join(problems), problems)
        return CheckResult(
            True, f"manual store {self.name}: tasks go to the owner of {self.system}"
        )

    def find(
        self, collection: Collection, field_name: str, values: Sequence[Any]
    ) -> Iterator[dict[str, Any]]:
        # Nobody can search this system but its owner: the staff task stands for the records.
        return iter(())

    def task(self, action: str = "access") -> ManualTask:
        """The task for an `access` or `erasure` request."""
        instructions = self.options.get("instructions") or _DEFAULT_INSTRUCTIONS.get(
            action, _DEFAULT_INSTRUCTIONS["access"]
        ).format(system=self.system or self.name)
        collections = [
            {
                "name": c.name,
                "categories": list(c.categories),
                "erasure": c.erasure.action.value,
                "basis": c.erasure.basis,
            }
            for c in self.store_map.collections.values()
        ]
        return ManualTask(
            store=self.name,
            system=self.system,
            owner=self.owner,
            instructions=instructions,
            collections=collections,
        )
