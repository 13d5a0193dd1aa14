"""The error hierarchy: the type of an error carries the decision to retry or not.

Clients translate third-party exceptions (``ApiException``, ``httpx.HTTPError``,
driver errors) into these, so tasks retry only what is transient.
"""

from __future__ import annotations


class OncallError(Exception):
    """Base class of every error the product raises on purpose."""


class TransientError(OncallError):
    """A failure that may go away by itself: retry with backoff."""


class PermanentError(OncallError):
    """A failure that will not go away by retrying: report it and stop."""


class UnsafeToRemediate(OncallError):
    """A guard refused a destructive action: escalate to a human instead of acting."""


class AutomationPaused(UnsafeToRemediate):
    """The automation is paused for the service: diagnose and page, change nothing."""


class NotFoundError(PermanentError):
    """The object the playbook needs does not exist."""


def is_transient(exc: BaseException) -> bool:
    """Tell whether a task should retry after ``exc`` (used as a Prefect retry condition)."""
    return isinstance(exc, TransientError)
