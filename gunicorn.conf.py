"""gunicorn settings for the web dyno: sized from the environment, inside Heroku's limits."""

import os

from wiring.logs import gunicorn_logconfig

# Heroku-style routers give only $PORT; everything else is read from the environment too.
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads keep connections alive cheaply while a request waits on one Redis round trip.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Under the router's 30 s limit, so gunicorn, not the router, ends a stuck request.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "25"))
# Finish in-flight requests inside Heroku's 30 s SIGTERM → SIGKILL window.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 75  # longer than typical load-balancer idle timeouts
# X-Forwarded-* is believed only from the addresses listed here (the platform's router).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No control socket under ~/.gunicorn (gunicorn 27 default); nothing uses it on a dyno.
control_socket_disable = True
# No access log by default: Heroku's router logs every request already. Note that the
# string "None" would create a file named None (gunicorn 27), so leave it unset.
if os.environ.get("GUNICORN_ACCESS_LOG"):
    accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Every line JSON with the app's fields (ts, level, logger, msg), gunicorn's own included.
logconfig_dict = gunicorn_logconfig(loglevel)
logger_class = "wiring.logs.GunicornLogger"
wsgi_app = "connector.wsgi:app"


def post_fork(server: object, worker: object) -> None:
    """Hand the GIL between threads more often than every 5 ms.

    A webhook mostly waits on one Redis round trip; with Python's default switch interval a
    ready thread can wait 5 ms for the GIL behind a busy one, which is most of the tail
    latency at moderate load. Switching more often shortens that tail without costing
    throughput or CPU per request (bench/README.md has the figures).
    """
    import sys

    sys.setswitchinterval(0.0005)
