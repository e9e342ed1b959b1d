"""A Punchh sandbox: a small Flask app imitating the Headless Offers and custom-segment
endpoints, with a control surface (``/_sandbox/``) to steer its clock and faults.

``create_app`` builds it; ``python -m sandbox`` serves it. See ``sandbox.app``. It imports
nothing of the connector's: it stands alone, as Punchh does.
"""

from sandbox.app import create_app

__all__ = ["create_app"]
