"""The run directory: atomic writes and the run's identity.

Every file is written to a temporary name, flushed to disk and renamed, so a
reader sees either the old file or the whole new one, never half of one.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import tempfile
from pathlib import Path

IDENTITY_FILE = "run.json"


class RunDirError(ValueError):
  """A run directory that cannot take this run; the message says why."""


def write_atomic(path: Path, text: str) -> None:
  """Writes `path` whole or not at all; a full disk is a RunDirError that
  leaves the previous file as it was."""
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
  except OSError as error:
    raise write_error(path, error) from None
  try:
    os.chmod(tmp, 0o644)  # mkstemp makes it private; results are to share
    with os.fdopen(fd, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as error:
    Path(tmp).unlink(missing_ok=True)
    raise write_error(path, error) from None
  except BaseException:
    Path(tmp).unlink(missing_ok=True)
    raise


def write_error(path: Path, error: OSError) -> RunDirError:
  """The one-line error of a write that failed (a full disk, a size limit,
  permissions, a path that is no file): what was written before stays
  intact."""
  if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
    fix = "free disk space"
  else:
    fix = "give a file path in a writable directory"
  return RunDirError(
      f"{path}: could not be written ({error.strerror or error}); {fix}, "
      "then run the same command again (results written before are intact)")


def write_json(path: Path, value) -> None:
  write_atomic(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def _missing(path: Path) -> RunDirError:
  return RunDirError(
      f"{path}: missing from the run directory; run the phase that writes it "
      "again (--phase=all redoes what is missing)")


def read_json(path: Path):
  """The JSON in `path`; a missing or damaged file is a one-line
  RunDirError."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except FileNotFoundError:
    raise _missing(path) from None
  except (json.JSONDecodeError, UnicodeDecodeError) as error:
    raise RunDirError(
        f"{path}: damaged, not readable as JSON ({error}); restore it from a "
        "copy, or delete it (and what was made from it) to redo that "
        "step") from None


def read_csv(path: Path) -> list[dict]:
  """The rows of a table written by `write_csv`; a missing one is a one-line
  RunDirError."""
  try:
    with open(path, encoding="utf-8", newline="") as f:
      return list(csv.DictReader(f))
  except FileNotFoundError:
    raise _missing(path) from None


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
  out = io.StringIO()
  writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore",
                          lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  write_atomic(path, out.getvalue())


def append_jsonl(path: Path, record: dict) -> None:
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
      f.write(json.dumps(record) + "\n")
  except OSError as error:
    raise write_error(path, error) from None


def claim(workdir: Path, identity: dict) -> None:
  """Records `identity` in `workdir`, or checks it against the one there.

  A run directory holds the results of one configuration on one series;
  mixing in results of another would make its table meaningless.
  """
  path = workdir / IDENTITY_FILE
  identity = json.loads(json.dumps(identity))  # tuples read back as lists
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as error:
    raise RunDirError(f"{workdir}: cannot create the run directory "
                      f"({error.strerror}); choose another --workdir") from None
  try:  # a real write: permissions alone do not tell (root, read-only mounts)
    fd, probe = tempfile.mkstemp(dir=workdir, prefix=".probe.")
    os.close(fd)
    os.unlink(probe)
  except OSError as error:
    raise RunDirError(f"{workdir}: not writable ({error.strerror}); choose "
                      "another --workdir or fix its permissions") from None
  if path.exists():
    previous = read_json(path)
    # The fingerprint is of the rest: naming it too would say nothing.
    changed = sorted(k for k in _differences(previous, identity)
                     if k != "fingerprint")
    if changed:
      raise RunDirError(
          f"{workdir}: holds a run with other settings ({', '.join(changed)} "
          "differ); use a new --workdir or the original settings")
    return
  write_json(path, identity)


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
  keys = set(old) | set(new)
  out = []
  for key in keys:
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _differences(a, b, f"{prefix}{key}.")
    elif a != b:
      out.append(prefix + key)
  return out
