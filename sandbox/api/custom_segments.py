"""Custom Segments: list, create, delete, the membership check and add_users.

Parameters are read as Rails reads them: query string and JSON body alike. The list is paged
as the other lists are ([guess]: its paging is not documented).
"""

from __future__ import annotations

from flask import Blueprint, Response

from sandbox.listing import list_params, page_of
from sandbox.serving import params, reply, serve
from sandbox.state import SandboxState

custom_segments = Blueprint("custom_segments", __name__, url_prefix="/api2/dashboard")


@custom_segments.get("/custom_segments")
def list_custom_segments() -> Response:
    """Every custom segment, oldest first, a bare array."""

    def action(state: SandboxState) -> Response:
        _, page, per_page = list_params(params(), None, state.max_per_page)
        with state.custom_segment_book() as (book, _seed, _now):
            found = [c.public() for c in book.all()]
        return reply(page_of(found, page, per_page))

    return serve("custom_segments", action)


@custom_segments.post("/custom_segments")
def create_custom_segment() -> Response:
    """Create one: 201, or 422 when the name is taken (a create is never idempotent)."""

    def action(state: SandboxState) -> Response:
        with state.custom_segment_book() as (book, _seed, now):
            return reply(book.create(params(), now).public(), 201)

    return serve("create_custom_segment", action)


@custom_segments.delete("/custom_segments")
def delete_custom_segment() -> Response:
    """Delete one by ``custom_segment_id``: 202, or 404."""

    def action(state: SandboxState) -> Response:
        with state.custom_segment_book() as (book, _seed, _now):
            return reply(book.delete(params()), 202)

    return serve("delete_custom_segment", action)


@custom_segments.get("/custom_segments/members")
def custom_segment_member() -> Response:
    """The membership check: the member, or 404 "Member not found."."""

    def action(state: SandboxState) -> Response:
        with state.custom_segment_book() as (book, seed, _now):
            return reply(book.member(params(), seed))

    return serve("custom_segment_member", action)


@custom_segments.post("/custom_segments/members/add_users")
def add_users() -> Response:
    """Add up to 1,000 guests (100 in sync mode); answer the identifiers naming nobody."""

    def action(state: SandboxState) -> Response:
        with state.custom_segment_book() as (book, seed, now):
            unknown = book.add_users(params(), seed, now)
        return reply({"invalid_identifiers": unknown})

    return serve("add_users", action)
