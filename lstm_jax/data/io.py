"""Reading one numeric column of a CSV or `.npy` file, and the demo series."""

from __future__ import annotations

import csv
import dataclasses
import difflib
import gzip
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

# A time column found under one of these names (any case) labels the rows.
TIME_COLUMN_NAMES = ("date", "datetime", "time", "timestamp")


class DataError(ValueError):
  """A file that cannot serve as a series; the message names file and fix."""


@dataclasses.dataclass(frozen=True)
class Series:
  """values: [rows] float64 in original units; times: [rows] labels or None."""

  values: np.ndarray
  name: str
  source: str
  times: np.ndarray | None = None

  def time_at(self, row: int) -> str | None:
    return None if self.times is None else str(self.times[row])


def read_series(path: str, column: str | None) -> Series:
  """Reads `column` of a CSV (any delimiter, optionally gzipped) or `.npy`."""
  if not os.path.exists(path):
    raise DataError(f"{path}: no such file; check the --data path")
  if os.path.isdir(path):
    raise DataError(f"{path}: is a directory; give the data file inside it")
  if path.endswith(".npy"):
    return _read_npy(path, column)
  return _read_csv(path, column)


def _read_npy(path: str, column: str) -> Series:
  try:
    array = np.load(path, mmap_mode="r")
  except (ValueError, OSError) as error:
    raise DataError(f"{path}: not a readable .npy array ({error}); save it "
                    "with numpy.save") from None
  if array.ndim == 1:
    values = np.asarray(array, dtype=np.float64)
  elif array.ndim == 2:
    if not (column or "").isdigit() or int(column) >= array.shape[1]:
      raise DataError(
          f"{path}: a 2-D array needs --column set to a column index below "
          f"{array.shape[1]}")
    values = np.asarray(array[:, int(column)], dtype=np.float64)
  else:
    raise DataError(f"{path}: a {array.ndim}-D array; save a 1-D or 2-D one")
  return _checked(Series(values, column or "value", path), path)


def _open_text(path: str):
  if path.endswith(".gz"):
    return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
  return open(path, encoding="utf-8-sig", newline="")


def _header(path: str) -> tuple[list[str], str]:
  """The column names and the delimiter, sniffed from the file's start."""
  try:
    with _open_text(path) as f:
      sample = f.read(64 * 1024)
  except (UnicodeDecodeError, OSError, EOFError) as error:
    raise DataError(f"{path}: not readable as UTF-8 CSV text ({error}); give "
                    "a CSV, .csv.gz or .npy file") from None
  if not sample.strip():
    raise DataError(f"{path}: the file is empty; give a CSV with a header row")
  try:
    delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
  except csv.Error:
    delimiter = ","
  names = next(csv.reader(sample.splitlines()[:1], delimiter=delimiter))
  return [n.strip() for n in names], delimiter


def _read_csv(path: str, column: str) -> Series:
  names, delimiter = _header(path)
  if column is None:
    raise DataError(f"{path}: no --column given; choose one of "
                    f"{', '.join(names)}")
  if column not in names:
    close = difflib.get_close_matches(column, names, n=1, cutoff=0.0)
    hint = f"; did you mean --column={close[0]}?" if close else ""
    raise DataError(
        f"{path}: no column {column!r}; the columns are "
        f"{', '.join(names)}{hint}")
  time_name = next(
      (n for n in names if n.lower() in TIME_COLUMN_NAMES and n != column), None)
  wanted = [column] + ([time_name] if time_name else [])
  try:
    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted,
            column_types={column: pa.float64()}
            | ({time_name: pa.string()} if time_name else {})),
    )
  except pa.ArrowInvalid:
    raise DataError(_first_non_numeric(path, column, delimiter)) from None
  if table.num_rows == 0:
    raise DataError(f"{path}: a header but no rows; give at least one data row")
  values = table[column].to_numpy(zero_copy_only=False).astype(np.float64)
  times = table[time_name].to_numpy(zero_copy_only=False) if time_name else None
  return _checked(Series(values, column, path, times), path)


def _first_non_numeric(path: str, column: str, delimiter: str) -> str:
  """Names the first cell of `column` that is not a number (error path)."""
  table = pacsv.read_csv(
      path, parse_options=pacsv.ParseOptions(delimiter=delimiter),
      convert_options=pacsv.ConvertOptions(
          include_columns=[column], column_types={column: pa.string()}))
  for row, text in enumerate(table[column].to_pylist()):
    try:
      float(text if text is not None else "nan")
    except ValueError:
      return (f"{path}: column {column!r}, file line {row + 2}: {text!r} is "
              "not a number; fix or remove that row")
  return f"{path}: column {column!r} could not be read as numbers"


def _checked(series: Series, path: str) -> Series:
  missing = np.flatnonzero(np.isnan(series.values))
  if missing.size:
    rows = ", ".join(str(r + 2) for r in missing[:5])
    raise DataError(
        f"{path}: column {series.name!r} has {missing.size} missing values "
        f"(first at file lines {rows}); fill or remove them")
  if not np.isfinite(series.values).all():
    row = int(np.flatnonzero(~np.isfinite(series.values))[0]) + 2
    raise DataError(f"{path}: column {series.name!r} holds an infinite value "
                    f"at file line {row}; fix or remove it")
  return series


def demo_series(rows: int = 6000, seed: int = 0) -> Series:
  """A synthetic hourly series: daily and weekly cycles, trend, AR(1) noise."""
  rng = np.random.default_rng(seed)
  t = np.arange(rows, dtype=np.float64)
  noise = np.zeros(rows)
  shocks = rng.normal(0.0, 1.0, rows)
  for i in range(1, rows):
    noise[i] = 0.8 * noise[i - 1] + shocks[i]
  values = (20.0 + 0.002 * t + 6.0 * np.sin(2 * np.pi * t / 24)
            + 3.0 * np.sin(2 * np.pi * t / 168) + noise)
  source = f"synthetic demo series ({rows} rows, seed {seed}; not real data)"
  return Series(values, "demo", source)
