"""The one way to queue Celery work: by the task's name, once the transaction commits.

Services call `enqueue("job_run", job.pk)` and never import `requests.tasks`: tasks are entry
points that call services, so the arrow goes one way only (an import contract in pyproject.toml
checks it). Work goes out on commit so that a worker never looks for rows that are not committed
yet, and never at all when the transaction rolls back.

Names are checked when work is queued, not when it is sent, so a misspelt name fails the service
call (and its test) instead of vanishing after the commit.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import current_app
from django.db import transaction

# Every task the portal defines lives in this module; services name them without the prefix.
TASKS_MODULE = "requests.tasks"


def task_name(name: str) -> str:
    """The registered name of one of the portal's tasks (`job_run` -> `requests.tasks.job_run`)."""
    return name if "." in name else f"{TASKS_MODULE}.{name}"


def _task(name: str):
    tasks = current_app.tasks
    full = task_name(name)
    if full not in tasks:
        # The web process has not loaded the task modules yet: Celery's autodiscovery does
        # that for workers at start-up, and here on first use.
        current_app.loader.import_default_modules()
        tasks = current_app.tasks
    if full not in tasks:
        raise LookupError(f"no Celery task named {full}")
    return tasks[full]


def enqueue(
    name: str, *args: Any, queue: str | None = None, countdown: float | None = None
) -> None:
    """Send task `name` with `args` once the current transaction commits (at once outside one).

    `queue` sends it to a site's own queue (a store's workers); `countdown` delays it (seconds).
    """
    task = _task(name)
    options: dict[str, Any] = {}
    if queue:
        options["queue"] = queue
    if countdown:
        options["countdown"] = max(0.0, countdown)
    transaction.on_commit(partial(task.apply_async, args=list(args), **options))
