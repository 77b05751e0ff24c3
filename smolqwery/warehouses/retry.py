"""Which BigQuery failures are worth retrying, and errors a user can act on for the others.

One retry layer only: client calls are made without the client's own retries and each warehouse
operation is retried as a whole, with exponential backoff, under ``SMOLQWERY_RETRY_DEADLINE``.
That is safe because every operation is idempotent (jobs run under deterministic ids, see
``BigQueryWarehouse._run_job``; the replace transaction deletes what it inserts). Permanent
failures (400, 403, 404, ...) are raised at once, classified by
:func:`~smolqwery.warehouses.bigquery_errors.classify` into an error naming the operation and
what to do. Messages never carry credentials: authentication errors are reported by type only.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import TypeVar

from ..errors import WarehouseError
from .bigquery_errors import Target, classify, describe, one_line

logger = logging.getLogger("smolqwery.warehouses.retry")

T = TypeVar("T")

#: Reasons BigQuery gives (in ``errors[].reason``) for failures that pass with time.
TRANSIENT_REASONS = frozenset(
    {"backendError", "internalError", "rateLimitExceeded", "jobRateLimitExceeded"}
)
#: A transaction (or a DML statement) that lost to a concurrent one, to be run again whole:
#: "Transaction is aborted due to concurrent update against table p:d.t. Transaction ID: …",
#: "Could not serialize access to table p:d.t due to concurrent update" (400, ``invalidQuery``:
#: the reason alone would say "your query is wrong"). The replace script is one transaction,
#: rolled back whole by the abort, and deletes what it inserts: running it again is safe.
#: The local emulator (``local-bigquery``, on DuckLake) aborts the same conflict as "Failed to
#: commit: Failed to commit DuckLake transaction." (also 400 ``invalidQuery``).
TRANSIENT_MESSAGES = (
    "concurrent update",
    "retry the transaction",
    "failed to commit ducklake transaction",
)


class TryAgain(Exception):
    """Raised inside an operation to run it again (e.g. a read-merge-write that lost a race)."""


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, rate limits, connection errors and timeouts: worth another try."""
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if isinstance(
        exc,
        (
            TryAgain,
            gexc.TooManyRequests,
            gexc.InternalServerError,
            gexc.BadGateway,
            gexc.ServiceUnavailable,
            gexc.GatewayTimeout,
            gexc.DeadlineExceeded,
            requests.ConnectionError,
            requests.Timeout,
            ConnectionError,
            TimeoutError,
            concurrent.futures.TimeoutError,
            auth_exc.TransportError,
        ),
    ):
        return True
    if isinstance(exc, gexc.GoogleAPICallError):
        reasons = {e.get("reason") for e in (exc.errors or []) if isinstance(e, dict)}
        if reasons & TRANSIENT_REASONS:
            return True
        # The job's errorResult is the exception's message; its errors[] may say more.
        messages = [exc.message or ""]
        messages += [str(e.get("message", "")) for e in (exc.errors or []) if isinstance(e, dict)]
        text = " ".join(messages).lower()
        return any(m in text for m in TRANSIENT_MESSAGES)
    return False


def call(
    operation: str,
    fn: Callable[[], T],
    deadline: float,
    endpoint: str | None = None,
    target: Target | None = None,
    setting: str = "SMOLQWERY_RETRY_DEADLINE",
) -> T:
    """Run ``fn``, retrying transient failures under ``deadline`` seconds in total; permanent
    ones are raised at once as the error :func:`classify` chooses. ``setting`` names the
    setting the deadline comes from, in the error."""
    from google.api_core import exceptions as gexc
    from google.api_core.retry import Retry
    from google.auth import exceptions as auth_exc

    def on_error(exc: BaseException) -> None:
        logger.warning("%s: transient failure, retrying: %s", operation, describe(exc, endpoint))

    retry = Retry(
        predicate=is_transient,
        initial=0.5,
        maximum=min(30.0, max(deadline / 4, 0.5)),
        multiplier=2.0,
        timeout=deadline,
        on_error=on_error,
    )
    try:
        return retry(fn)()
    except gexc.RetryError as exc:
        cause = exc.cause if exc.cause is not None else exc
        raise WarehouseError(
            one_line(
                f"{operation}: still failing after {deadline:g} s of retries "
                f"({setting}): {describe(cause, endpoint)}"
            )
        ) from None
    except auth_exc.GoogleAuthError as exc:
        raise WarehouseError(f"{operation}: {describe(exc)}") from None
    except gexc.GoogleAPICallError as exc:
        if is_transient(exc):
            msg = f"{operation}: still failing after {deadline:g} s of retries: {describe(exc)}"
            raise WarehouseError(one_line(msg)) from exc
        raise classify(exc, operation, target) from exc
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise WarehouseError(f"{operation}: {describe(exc, endpoint)}") from exc
