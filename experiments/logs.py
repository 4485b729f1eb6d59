"""Logging set-up shared by the command-line programs."""

from __future__ import annotations

import logging


def _not_orbax_info(record) -> bool:
  return ("/orbax/" not in record.pathname
          or record.levelno >= logging.WARNING)


def quiet_orbax() -> None:
  """Keeps Orbax's warnings but not its INFO lines (several per save).

  The filter sits on absl's logger, which every absl.logging call goes
  through (absl's own handler skips handler-level filters)."""
  logging.getLogger("absl").addFilter(_not_orbax_info)
