import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")

app = Celery("registry")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's Django fix-up closes every database connection after every task (since
# 5.5: celery/celery#9824), so each task — a delivery batch of 25 rows, say — paid for
# a new PostgreSQL backend (a fork, authentication, a cold catalogue cache). The
# fix-up leaves them open when told to reuse them; it still closes them every
# DB_REUSE_MAX tasks, and `_connections_tidy` below closes, before each task, any
# connection Django itself would not reuse (older than CONN_MAX_AGE, or after an
# error) and any the server has dropped (a restart, an idle timeout).
app.conf.CELERY_DB_REUSE_MAX = 500


@signals.task_prerun.connect
def _connections_tidy(task=None, **kwargs) -> None:
    # Not for an eager task: it runs inside its caller (a request, a test) and the
    # caller's transaction, whose connection is not ours to close.
    if task is not None and not task.request.is_eager:
        from django.db import close_old_connections, connections

        close_old_connections()
        # One round trip a task (not a request's: the web keeps Django's default of
        # no health checks); a task is a batch of work, a reconnect costs far more.
        for conn in connections.all(initialized_only=True):
            if conn.connection is not None and not conn.is_usable():
                conn.close()
