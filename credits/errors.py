"""Refusals a chat user (or an admin) can cause, each carrying the numbers they need to see."""

from __future__ import annotations

from generator.contract.errors import Refusal


class LedgerError(Refusal):
    """Base of every ledger refusal; `user_message` is a sentence safe to show in the chat."""


class InsufficientCredits(LedgerError):
    def __init__(self, price: int, available: int) -> None:
        self.price = price
        self.available = available
        super().__init__(f"That needs {price} credits, but only {available} are available.")


class Banned(LedgerError):
    def __init__(self, account: str, reason: str | None) -> None:
        self.account = account
        self.reason = reason
        why = f": {reason}" if reason else ""
        super().__init__(f"This account ({account}) is banned{why}.")


class QuotaExceeded(LedgerError):
    def __init__(self, limit: int, in_flight: int) -> None:
        self.limit = limit
        self.in_flight = in_flight
        if limit == 0:
            super().__init__("This account may not start jobs for now (an admin set its limit to 0).")
        else:
            super().__init__(
                f"You already have {in_flight} job(s) in progress and the limit is {limit}; "
                "wait for one to finish."
            )


class UnknownJob(LedgerError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"There is no reservation for job {job_id}.")


class NotCaptured(LedgerError):
    """A refund of a job that was never charged: there is nothing to give back."""

    def __init__(self, job_id: str, state: str) -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(f"Job {job_id} was not charged (its credits are {state}), so there is nothing to refund.")


class InvalidAccount(LedgerError):
    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(
            f"{text!r} is not an account; write it as platform:id, e.g. telegram:12345 or discord:6789."
        )


class InvalidAmount(LedgerError):
    def __init__(self, amount: object, expected: str = "a positive whole number of credits") -> None:
        self.amount = amount
        super().__init__(f"{amount!r} is not a valid amount; use {expected}.")
