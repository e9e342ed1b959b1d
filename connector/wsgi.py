"""The WSGI entry point gunicorn loads: the app is built here, in the web process only."""

from connector import create_app

app = create_app()
