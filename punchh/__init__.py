"""Everything that speaks to Punchh: the HTTP client, its errors, and the cached name lookups."""

from punchh import errors
from punchh.catalog import Catalog, Resolution
from punchh.client import PunchhClient, format_start_time

__all__ = ["Catalog", "PunchhClient", "Resolution", "errors", "format_start_time"]
