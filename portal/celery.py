import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_shutdown
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# `filesystem://` (the embedded default) is kombu's transport with whole-message writes, in every
# process that sends or receives tasks: see portal/filesystem_broker.py.
TRANSPORT_ALIASES["filesystem"] = "portal.filesystem_broker:Transport"

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Celery's Django fixup closes every database connection before and after each task unless
# CELERY_DB_REUSE_MAX is set (settings.py sets it): a job, its finaliser and its email would each
# connect to the portal's database afresh. Instead the worker follows Django's own rule, as a web
# request does: a connection is kept for CONN_MAX_AGE, dropped when it broke or was left in a
# transaction, and checked before its next use (CONN_HEALTH_CHECKS).
def _close_old_connections(task=None, **_: object) -> None:
    if task is not None and getattr(task.request, "is_eager", False):
        return  # inline in the caller's own transaction: its connection is not the worker's
    from django.db import close_old_connections

    close_old_connections()


task_prerun.connect(_close_old_connections, weak=False)
task_postrun.connect(_close_old_connections, weak=False)


# Once the worker has stopped its pool and closed its connections, the interpreter's last garbage
# collection over the whole Django and Celery heap took about two seconds of a SIGTERM's stop
# (measured on a busy machine): the process is about to end, so that work is skipped.
@worker_shutdown.connect
def _skip_the_exit_collection(**kwargs: object) -> None:
    import gc

    gc.freeze()
