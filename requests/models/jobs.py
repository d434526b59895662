from __future__ import annotations

from django.db import models


class JobKind(models.TextChoices):
    ACCESS = "access", "Access"
    ERASURE = "erasure", "Erasure"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    # Handed to someone else: a manual task for staff, or a downstream service still working.
    WAITING = "waiting", "Waiting for confirmation"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


OPEN_JOB_STATES = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.WAITING})


class Job(models.Model):
    """The work of one request in one store. The database, not the broker, is its truth.

    A worker claims a job by a conditional UPDATE (queued -> running, with a lease); a second
    delivery of the same task finds it claimed and does nothing. A job whose lease ran out (its
    worker died) or whose message the broker lost is queued again by the reconciler.
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
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.state})"

    def summary(self) -> dict:
        return {
            "store": self.store.name,
            "store_kind": self.store.kind,
            "kind": self.kind,
            "state": self.state,
            "attempts": self.attempts,
            "counts": self.counts,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
