"""The WSGI entry point gunicorn loads: the app is built here, in the web process only."""

from connector import create_app

app = create_app()
# Decide what ledger writes wait for (ledger/durability.py) before any traffic, while Redis
# looks as it normally does; an impossible LEDGER_DURABILITY stops the process here.
app.extensions["punchh_connector"].ledger.decide_durability()
