"""The connector's version, shown in the User-Agent sent to Punchh."""

__version__ = "0.1.0"
