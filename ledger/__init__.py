"""The ledger: every Redis key and script of a distribution's life."""
