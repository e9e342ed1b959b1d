"""Placeholder blueprint, filled in by its issue."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("status", __name__)
