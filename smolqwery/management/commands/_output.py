"""What every smolqwery command does with its output: pipes, and logs nobody configured.

* ``smolqwery_print_extract | head`` closes the pipe early: the command stops quietly with
  status 141, as a tool killed by SIGPIPE does (``git log | head``), instead of a
  BrokenPipeError traceback.
* When the project's ``LOGGING`` sends smolqwery's records nowhere, Python's last-resort
  handler would print warnings and errors bare on stderr, repeating the failures the command
  already reports. For the command's duration, smolqwery's warnings (retries, a lock taken
  over...) go to the command's stderr instead, timestamped, and failures are not repeated.
  A project that configures logging keeps full control (0.1.3 defect D22).

The 0.1.3 defect ids cited here (``D1`` … ``D22``) are listed in ``docs/defects-0.1.3.md``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand

from smolqwery.errors import REPORTED_ATTRIBUTE

#: Exit status of a command whose reader closed the pipe (128 + SIGPIPE).
BROKEN_PIPE_STATUS = 141


class _NotReported(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, REPORTED_ATTRIBUTE, False)


class SmolqweryCommand(BaseCommand):
    """Base of smolqwery's commands (see the module docstring)."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        ours = logging.getLogger("smolqwery")
        handler: logging.Handler | None = None
        if not ours.hasHandlers():
            handler = logging.StreamHandler(options.get("stderr") or sys.stderr)
            handler.setLevel(logging.WARNING)
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            handler.addFilter(_NotReported())
            ours.addHandler(handler)
        try:
            output: str | None = super().execute(*args, **options)
            self.stdout.flush()
            return output
        except BrokenPipeError:
            # Later writes (and the interpreter's final flush) must not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(BROKEN_PIPE_STATUS) from None
        finally:
            if handler is not None:
                ours.removeHandler(handler)
