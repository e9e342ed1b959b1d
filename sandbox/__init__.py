"""A Punchh Headless Offers sandbox: a small Flask app imitating the three endpoints.

``create_app`` builds it; ``python -m sandbox`` serves it. See ``sandbox.app``.
"""

from sandbox.app import create_app

__all__ = ["create_app"]
