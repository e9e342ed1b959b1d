"""Everything that speaks to Punchh: the HTTP client, its errors, and the cached name lookups."""

from connector.punchh import errors
from connector.punchh.catalog import Catalog, Resolution
from connector.punchh.client import PunchhClient, format_start_time

__all__ = ["Catalog", "PunchhClient", "Resolution", "errors", "format_start_time"]
