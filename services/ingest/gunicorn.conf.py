"""gunicorn settings for the ingest API: `gunicorn -c services/ingest/gunicorn.conf.py "ingest.app:create_app()"`.

gthread workers (plain threads, no eventlet): SM2 verification, JSON and validation are CPU
work, so processes give parallelism (one per usable core by default) and threads overlap the
database and broker round-trips of a request (about ten per request; most of its time is spent
waiting on them). Each worker builds its own app (no preload), so every process has its own
Mongo client and AMQP connections after fork.

Workers: INGEST_WORKERS, else WEB_CONCURRENCY, else the CPUs this process may use (at least 2).
Threads per worker: INGEST_THREADS, else GUNICORN_THREADS, else 8. In a container limited by a
CPU quota (not by cpuset), set WEB_CONCURRENCY to the quota: os.sched_getaffinity sees the host.
"""

import os
import shutil
import tempfile

from carbon_common.config import int_setting, setting

bind = setting("INGEST_BIND", "127.0.0.1:8080")
_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
workers = int_setting("INGEST_WORKERS", int_setting("WEB_CONCURRENCY", max(2, _cpus)))
worker_class = "gthread"
threads = int_setting("INGEST_THREADS", int_setting("GUNICORN_THREADS", 8))
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = None  # the app logs JSON with trace ids; metrics count every request
errorlog = "-"
loglevel = setting("INGEST_GUNICORN_LOGLEVEL", "warning")

# prometheus_client needs a shared directory to sum metrics over the worker processes.
if not setting("PROMETHEUS_MULTIPROC_DIR", ""):
    _metrics_dir = tempfile.mkdtemp(prefix="ingest-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
else:
    _metrics_dir = None


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
