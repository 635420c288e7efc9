"""gunicorn settings for the ingest API: `gunicorn -c services/ingest/gunicorn.conf.py "ingest.app:create_app()"`.

gthread workers (plain threads, no eventlet): SM2 verification is CPU work, so processes give
parallelism and threads overlap database and broker round-trips. Each worker builds its own
app (no preload), so every process has its own Mongo client and AMQP connection after fork.
"""
import os
import shutil
import tempfile

bind = os.environ.get("INGEST_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("INGEST_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("INGEST_THREADS", "4"))
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = None  # the app logs JSON with trace ids; metrics count every request
errorlog = "-"
loglevel = os.environ.get("INGEST_GUNICORN_LOGLEVEL", "warning")

# prometheus_client needs a shared directory to sum metrics over the worker processes.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
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
