"""`/v1`: the connector's own API, behind API_TOKEN — one blueprint, split by noun.

- distributions.py: request a distribution (`POST /v1/distributions`, the generic intake),
  list them, show one with its events.
- actions.py: operator actions on one (retry, resolve, release, cancel, undo), ending a Punchh
  key lockout, and the deployment check — the CLI's operations (both call ledger.actions).
- audience.py: audience sends — add recipients, end the send, commit-partial.
- lookups.py: Punchh segments and redeemables by name, for pickers.
- schemas.py: the bodies the actions read and the answers they give.
"""

from connector.v1 import actions, audience, distributions, lookups
from connector.v1.blueprint import bp

__all__ = ["actions", "audience", "bp", "distributions", "lookups"]
