"""The ledger: every Redis key and script of a distribution's life."""

from ledger.durability import NotDurable
from ledger.record import Distribution
from ledger.states import IntakeResult, State
from ledger.store import Ledger

__all__ = ["Distribution", "IntakeResult", "Ledger", "NotDurable", "State"]
