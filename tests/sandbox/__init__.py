"""Tests of the Punchh sandbox, one module per sandbox module."""
