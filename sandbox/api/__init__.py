"""Punchh's imitated endpoints, one blueprint per tag of PAR's OpenAPI export."""
