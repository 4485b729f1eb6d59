"""Logging set-up shared by the command-line programs."""

from __future__ import annotations

import logging


def _wanted(record) -> bool:
  """Orbax's warnings, but not its INFO lines (several per save) nor the
  tracebacks its writer threads log for a failed save: the same error
  reaches the caller, which tells it in one line."""
  if "/orbax/" not in record.pathname:
    return True
  return record.levelno >= logging.WARNING and record.levelno < logging.ERROR


def quiet_orbax() -> None:
  """Filters Orbax's records as `_wanted` says.

  The filter sits on absl's logger, which every absl.logging call goes
  through (absl's own handler skips handler-level filters)."""
  logging.getLogger("absl").addFilter(_wanted)
