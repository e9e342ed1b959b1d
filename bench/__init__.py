"""The intake benchmark: the real stack under wrk, next to a bare-Flask floor (see README)."""
