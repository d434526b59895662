"""The one way to queue Celery work: by the task's name, once the transaction commits.

Services call `enqueue("job_run", job.pk)` and never import `requests.tasks`: tasks are entry
points that call services, so the arrow goes one way only (an import contract in pyproject.toml
checks it). Work goes out on commit so that a worker never looks for rows that are not committed
yet, and never at all when the transaction rolls back.

Names are checked when work is queued, not when it is sent, so a misspelt name fails the service
call (and its test) instead of vanishing after the commit.
"""

from __future__ import annotations

import logging
import time
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


# Per process, until when (time.monotonic) a coalesced task (by name) that this process queued,
# or learnt another process queued, has not started yet. Threads racing here queue one task too
# many at worst.
_due_until: dict[str, float] = {}

logger = logging.getLogger(__name__)


def enqueue_coalesced(name: str, delay: float) -> None:
    """Once the current transaction commits, queue task `name` to run `delay` seconds later,
    unless one queued by this process or (with the cache on Redis) any other has not started yet:
    that one will find this transaction's work, as it committed before it starts. So a busy
    portal queues about one such task per delay however many requests commit. The task calls
    `coalesced_started(name)` first thing. A lost task is the task's reconciler's to cover.
    """
    transaction.on_commit(partial(_queue_unless_due, name, delay))


def coalesced_started(name: str) -> None:
    """A coalesced task started: work committed from now on needs a new one (in this process;
    the shared claim ran out when the task's countdown did)."""
    _due_until.pop(name, None)


def _queue_unless_due(name: str, delay: float) -> None:
    from requests.cache_redis import claim_due

    task = _task(name)
    if task.app.conf.task_always_eager:
        # Tasks run at once where they are queued (tests, no worker): none is ever due later.
        task.apply_async()
        return
    now = time.monotonic()
    if now < _due_until.get(name, 0.0):
        return
    try:
        due_in = claim_due(f"due:{name}", delay)
    except Exception:  # no shared claim: queue this process's own, as without Redis
        logger.warning("could not claim queuing %s in the cache; queuing it anyway", name)
        due_in = 0.0
    if due_in > 0:
        _due_until[name] = now + due_in
        return
    _due_until[name] = now + delay
    try:
        task.apply_async(countdown=delay)
    except BaseException:
        _due_until.pop(name, None)
        raise
