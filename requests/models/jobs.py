from __future__ import annotations

from django.db import models


class JobKind(models.TextChoices):
    ACCESS = "access", "Access"
    ERASURE = "erasure", "Erasure"


class JobState(models.TextChoices):
    # Not to run yet: it waits for other work (`held_for` says which). Nothing claims it and the
    # reconciler does not queue it; `requests.services.jobs.jobs_release` does.
    HELD = "held", "Held"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    # Handed to someone else: a manual task for staff, or a downstream service still working.
    WAITING = "waiting", "Waiting for confirmation"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class HeldFor(models.TextChoices):
    NOTHING = "", "Nothing"
    # The same person's access package is built first: the copy is made before the erasure.
    ACCESS = "access", "The same person's access package"
    # Stores whose records are found through this store's are erased first.
    ORDER = "order", "Stores erased before this one"


OPEN_JOB_STATES = frozenset({JobState.HELD, JobState.QUEUED, JobState.RUNNING, JobState.WAITING})

# Every move a job may make; `requests.services.jobs` (the only writer of jobs) checks each
# against this table. RUNNING -> RUNNING is a claim of a job whose worker's lease ran out.
JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    JobState.HELD: frozenset({JobState.QUEUED}),  # released
    JobState.QUEUED: frozenset({JobState.HELD, JobState.RUNNING}),  # held at start; claimed
    JobState.RUNNING: frozenset(
        {
            JobState.RUNNING,  # claimed again once the lease ran out
            JobState.QUEUED,  # a transient failure, tried again later
            JobState.WAITING,  # handed over to staff or a downstream service
            JobState.DONE,
            JobState.FAILED,
        }
    ),
    JobState.WAITING: frozenset({JobState.DONE, JobState.FAILED}),  # confirmed, or recipient's word
    JobState.DONE: frozenset({JobState.FAILED}),  # the verification sweep found records left
    JobState.FAILED: frozenset({JobState.HELD, JobState.QUEUED}),  # staff retry
}


def job_can_move(current: str, target: str) -> bool:
    return target in JOB_TRANSITIONS.get(current, frozenset())


class Job(models.Model):
    """The work of one request in one store. The database, not the broker, is its truth.

    A state machine (`JOB_TRANSITIONS`), written only by `requests.services.jobs`. A worker claims
    a job by a conditional UPDATE (queued -> running, with a lease); a second delivery of the same
    task finds it claimed and does nothing. A job whose lease ran out (its worker died) or whose
    message the broker lost is queued again by the reconciler.
    """

    request = models.ForeignKey(
        "requests.DataRequest", on_delete=models.CASCADE, related_name="jobs"
    )
    store = models.ForeignKey(
        "requests.ConnectedStore", on_delete=models.PROTECT, related_name="jobs"
    )
    kind = models.CharField(max_length=16, choices=JobKind.choices)
    state = models.CharField(
        max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True
    )
    held_for = models.CharField(max_length=16, choices=HeldFor.choices, default="", blank=True)
    # How many times a worker claimed the job since it was last (re)started; capped.
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    # Per collection: {"found": n, "deleted": n, "masked": n, "held": n, "kept": n, "notes": [..]}
    counts = models.JSONField(default=dict, blank=True)
    # Why the job failed or waits; never personal data.
    error = models.TextField(blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "store", "kind"], name="job_one_per_request_store_kind"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=JobState.values), name="job_state_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(state=JobState.HELD) | models.Q(held_for=""),
                name="job_held_for_only_when_held",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.state})"

    def summary(self) -> dict:
        return {
            "store": self.store.name,
            "store_kind": self.store.kind,
            "kind": self.kind,
            "state": self.state,
            "held_for": self.held_for,
            "attempts": self.attempts,
            "counts": self.counts,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
