"""A data file read once into a float32 `.npy` that later runs memory-map.

CSV (any delimiter, `.gz` too) and Parquet are streamed with pyarrow's
multi-threaded readers, a block at a time, so preparing a file of any size
holds only one block in memory. The result lives in a cache directory (never
beside the source, which may be read-only): `<name>-<key>.npy` holds the
rows x features values in original units, `<name>-<key>.times.npy` the time
column as int64 seconds where there is one, and `<name>-<key>.json` what
was read (source path, size and modification time, columns, rows, first
and last time, gaps, a hash of the values). A later run reuses it while the
source's path, size and modification time are unchanged.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import difflib
import gzip
import hashlib
import json
import mmap
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lstm_jax.data.errors import ColumnError, DataError
from lstm_jax.data.missing import (
    NULL_TOKENS,
    POLICIES,
    Block,
    MissingStats,
    check_values,
    handle_missing,
)

# Bump when the prepared layout changes: older cache entries are then rebuilt.
FORMAT = 3
# A time column found under one of these names (any case) labels the rows.
TIME_COLUMN_NAMES = ("date", "datetime", "time", "timestamp")
TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d",
    "%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y.%m.%d", "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M", "%Y/%m/%d", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",
    "%d.%m.%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
    # Day first after a slash: read when the first rows rule month first out.
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
)
BLOCK_BYTES = 1 << 20  # CSV read block: bounds preparation's memory (readahead too)
SEGMENT_BYTES = 8 << 20  # CSV text parsed at once, over the reader's threads
_NPY_HEADER = 128  # bytes; room for any 2-D float32 shape


def default_cache_dir() -> Path:
  base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
  return Path(base) / "lstm_jax"


@dataclasses.dataclass(frozen=True)
class Prepared:
  """values: [rows, features] float32 read from a memory map, original
  units, the target first; times: [rows] int64 seconds or None; meta: what
  was read (see the module docstring). `release()` drops the pages read so
  far from this process's resident memory (they stay in the page cache)."""

  values: np.ndarray
  times: np.ndarray | None
  meta: dict
  maps: tuple[mmap.mmap, ...] = ()

  def release(self) -> None:
    for mapped in self.maps:
      if hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


def map_npy(path: Path) -> tuple[np.ndarray, mmap.mmap]:
  """A read-only view of an `.npy` file's array, and its mapping."""
  with open(path, "rb") as f:
    version = np.lib.format.read_magic(f)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(f)
    offset = f.tell()
    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
  count = int(np.prod(shape))
  array = np.frombuffer(mapped, dtype, count, offset).reshape(
      shape, order="F" if fortran else "C")
  return array, mapped


@dataclasses.dataclass(frozen=True)
class ReadOptions:
  """How a file's cells are read: `missing`, what to do with missing values
  (one of missing.POLICIES); `decimal`, a CSV's decimal mark."""

  missing: str = "error"
  decimal: str = "."

  def __post_init__(self):
    if self.missing not in POLICIES:
      raise DataError(f"--missing={self.missing} is unknown; choose one of "
                      f"{', '.join(POLICIES)}")
    if self.decimal not in (".", ","):
      raise DataError(f"--decimal={self.decimal} is unknown; choose . or ,")


def prepare(path: str, column: str | None, features: tuple[str, ...] = (),
            cache_dir: Path | None = None,
            options: ReadOptions | None = None) -> Prepared:
  """The prepared form of `column` (the target) and `features` of `path`,
  from the cache when it is current, else made now."""
  options = options or ReadOptions()
  source = Path(path)
  if not source.exists():
    raise DataError(f"{path}: no such file; check the --data path")
  if source.is_dir():
    raise DataError(f"{path}: is a directory; give the data file inside it")
  try:
    with open(source, "rb"):
      pass
  except OSError as error:
    raise DataError(f"{path}: cannot be read ({error.strerror}); check its "
                    "permissions or copy it somewhere readable") from None
  cache = Path(cache_dir) if cache_dir else default_cache_dir()
  try:
    cache.mkdir(parents=True, exist_ok=True)
  except OSError as error:
    raise DataError(f"{cache}: cannot create the cache directory "
                    f"({error.strerror}); choose another --cache_dir") from None
  stat = source.stat()
  key = hashlib.sha256(json.dumps(
      [FORMAT, str(source.resolve()), column, list(features),
       dataclasses.astuple(options)]).encode()).hexdigest()[:12]
  stem = cache / f"{source.name.split('.')[0]}-{key}"
  meta_path = stem.with_suffix(".json")
  meta = _current(stem, stat)
  if meta is not None:
    try:
      return _open(stem, meta)
    except (ValueError, OSError, EOFError):
      pass  # a damaged entry (cut short, emptied): prepared again below
  if path.lower().endswith(".npy"):
    reader = _npy_blocks(path, column, features)
  elif path.lower().endswith((".parquet", ".pq")):
    reader = _parquet_blocks(path, column, features)
  else:
    reader = _csv_blocks(path, column, features, options.decimal)
  try:
    meta = _write(stem, reader, path, options.missing)
    meta.update(source=str(source.resolve()), size=stat.st_size,
                mtime_ns=stat.st_mtime_ns, format=FORMAT,
                read_options=dataclasses.asdict(options))
    _write_text(meta_path, json.dumps(meta, indent=2) + "\n")
  except OSError as error:
    raise DataError(f"{cache}: cannot write the prepared copy of {path} "
                    f"({error.strerror or error}); free space there or choose "
                    "another --cache_dir") from None
  return _open(stem, meta)


def _current(stem: Path, stat: os.stat_result) -> dict | None:
  """The cache entry's metadata if the entry is whole and made from the
  source as it is now; None means prepare again."""
  try:
    meta = json.loads(stem.with_suffix(".json").read_text())
    current = (meta["size"], meta["mtime_ns"]) == (stat.st_size,
                                                    stat.st_mtime_ns)
    whole = stem.with_suffix(".npy").exists() and (
        not meta["time_column"] or stem.with_suffix(".times.npy").exists())
  except (OSError, ValueError, KeyError, TypeError):
    return None
  return meta if current and whole else None


def _open(stem: Path, meta: dict) -> Prepared:
  values, values_map = map_npy(stem.with_suffix(".npy"))
  times_path = stem.with_suffix(".times.npy")
  if meta["time_column"] and times_path.exists():
    times, times_map = map_npy(times_path)
    return Prepared(values, times, meta, (values_map, times_map))
  return Prepared(values, None, meta, (values_map,))


@dataclasses.dataclass
class _Reader:
  columns: list[str]
  time_column: str | None
  blocks: Iterator[Block]  # first_row: the block's first data row (0-based)
  csv_path: str | None = None  # a CSV's rows are told by file line
  # Why a column named like times labels no rows (its rows' order then goes
  # unchecked): one line for the user, or None.
  time_note: str | None = None

  def where(self, row: int) -> str:
    if self.csv_path:
      return f"file line {file_line(self.csv_path, row)}"
    return f"row {row}"


def file_line(path: str, row: int) -> int:
  """The line of a CSV file holding data row `row` (0-based; the reader
  skips blank lines). Reads the file up to it: for error messages only."""
  with _open_text(path) as f:
    f.readline()  # the header
    line = 1
    for text in f:
      line += 1
      if text.strip("\r\n"):
        if row == 0:
          return line
        row -= 1
  return line + row + 1  # (not reached for a row the reader returned)


class _TimeIndex:
  """Checks a time column block by block (strictly increasing) and counts
  its gaps: steps longer than the usual (median) step of the first block."""

  def __init__(self, reader: _Reader, path: str):
    self.reader, self.path = reader, path
    self.last = self.step = None
    self.gaps = self.largest = None

  def check(self, stamps: np.ndarray, first_row: int) -> None:
    joined = stamps if self.last is None else np.concatenate(
        [[self.last], stamps])
    _check_order(joined, first_row - (self.last is not None), self.reader,
                 self.path)
    diffs = np.diff(joined)
    if self.step is None and diffs.size:
      self.step, self.gaps, self.largest = int(np.median(diffs)), 0, 0
    if diffs.size:
      self.gaps += int((diffs > self.step).sum())
      self.largest = max(self.largest, int(diffs.max()))
    self.last = int(stamps[-1]) if stamps.size else self.last


def _checked(reader: _Reader, path: str, index: _TimeIndex
             ) -> Iterator[Block]:
  for block in reader.blocks:
    check_values(block, reader.columns, path, reader.where)
    if block.times is not None:
      block.times = np.ascontiguousarray(block.times, np.int64)
      index.check(block.times, block.first_row)
    yield block


def _write(stem: Path, reader: _Reader, path: str, missing: str) -> dict:
  """Streams the blocks, checked and with missing values handled, into
  `stem`.npy (and .times.npy); returns meta."""
  digest, rows = hashlib.sha256(), 0
  first_time = last_time = None
  width = len(reader.columns)
  index, stats = _TimeIndex(reader, path), MissingStats(missing)
  blocks = handle_missing(_checked(reader, path, index), missing,
                          reader.columns, path, reader.where, stats)
  values_tmp = _temporary(stem.with_suffix(".npy"))
  times_tmp = _temporary(stem.with_suffix(".times.npy"))
  try:
    with open(values_tmp, "wb") as out, open(times_tmp, "wb") as times_out:
      out.write(b"\0" * _NPY_HEADER)
      times_out.write(b"\0" * _NPY_HEADER)
      for block in blocks:
        data = np.ascontiguousarray(block.values, np.float32)
        out.write(data.data)
        digest.update(data.data)
        if block.times is not None and block.times.size:
          first_time = int(block.times[0]) if first_time is None else (
              first_time)
          last_time = int(block.times[-1])
          times_out.write(block.times.data)
        rows += data.shape[0]
      if rows == 0:
        raise DataError(f"{path}: a header but no rows; give at least one "
                        "data row" if not stats.rows_dropped else
                        f"{path}: every row has a missing value; nothing is "
                        "left to train on")
      _finish_npy(out, (rows, width), "<f4")
      _finish_npy(times_out, (rows,), "<i8")
      for f in (out, times_out):
        f.flush()
        os.fsync(f.fileno())
    os.replace(values_tmp, stem.with_suffix(".npy"))
    if reader.time_column and first_time is not None:
      os.replace(times_tmp, stem.with_suffix(".times.npy"))
  finally:
    for tmp in (values_tmp, times_tmp):
      Path(tmp).unlink(missing_ok=True)
  return dict(
      columns=reader.columns, rows=rows,
      time_column=reader.time_column if first_time is not None else None,
      first_time=_label(first_time), last_time=_label(last_time),
      time_step_seconds=index.step, gaps=index.gaps,
      largest_gap_seconds=index.largest, missing=stats.to_dict(),
      time_note=reader.time_note,
      hash=digest.hexdigest()[:16])


def _temporary(final: Path) -> str:
  fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.")
  os.close(fd)
  os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache may be shared
  return tmp


def _finish_npy(f, shape: tuple[int, ...], descr: str) -> None:
  """Writes the `.npy` header the data were written behind."""
  text = repr({"descr": descr, "fortran_order": False, "shape": shape})
  body = text.encode("latin1")
  padding = _NPY_HEADER - 10 - len(body) - 1
  header = (b"\x93NUMPY\x01\x00" + (_NPY_HEADER - 10).to_bytes(2, "little")
            + body + b" " * padding + b"\n")
  f.seek(0)
  f.write(header)
  f.seek(0, os.SEEK_END)


def _write_text(path: Path, text: str) -> None:
  tmp = _temporary(path)
  with open(tmp, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def _label(seconds: int | None) -> str | None:
  if seconds is None:
    return None
  return str(np.datetime64(seconds, "s")).replace("T", " ")


def _check_order(stamps: np.ndarray, first_row: int, reader: _Reader,
                 path: str) -> None:
  """stamps[0] is data row `first_row`; each must be later than the last."""
  back = np.flatnonzero(np.diff(stamps) <= 0)
  if not back.size:
    return
  i = int(back[0])
  verb = "repeats" if stamps[i + 1] == stamps[i] else "goes back"
  raise DataError(
      f"{path}: time column {reader.time_column!r} {verb} at "
      f"{reader.where(first_row + i + 1)} ({_label(int(stamps[i]))} then "
      f"{_label(int(stamps[i + 1]))}); sort the rows by time and drop "
      "duplicates")


def _wanted(path: str, names: list[str], column: str | None,
            features: tuple[str, ...]) -> list[str]:
  """The target first, then the other features, checked against `names`."""
  if column is None:
    raise DataError(f"{path}: no --column given; choose one of "
                    f"{', '.join(names)}")
  wanted = [column] + [f for f in features if f != column]
  for name in wanted:
    if name not in names:
      _header_problem(path, names)
      close = difflib.get_close_matches(name, names, n=1, cutoff=0.0)
      flag = "--column" if name == column else "--features"
      hint = f"; did you mean {flag}={close[0]}?" if close else ""
      raise ColumnError(f"{path}: no column {name!r} ({flag}); the columns "
                        f"are {', '.join(names)}{hint}", name, names)
  if len(set(wanted)) != len(wanted):
    raise DataError(f"{path}: --features={','.join(features)} repeats a "
                    "column")
  for name in wanted:
    places = [i + 1 for i, n in enumerate(names) if n == name]
    if len(places) > 1:
      raise DataError(f"{path}: the header names column {name!r} "
                      f"{len(places)} times (columns "
                      f"{', '.join(map(str, places))}); rename all but one")
  return wanted


def _header_problem(path: str, names: list[str]) -> None:
  """Raises when the header is no header at all (a column is missing)."""
  if names and names[0].lower().startswith("sep="):
    raise DataError(f"{path}: the first line {names[0]!r} is a spreadsheet's "
                    "hint, not a header; delete that line")
  try:
    [float(n) for n in names]
  except ValueError:
    pass
  else:
    raise DataError(f"{path}: the first row holds numbers, not column names; "
                    "add a header row (such as date,value)")
  if len(names) == 1 and " " in names[0].strip():
    raise DataError(f"{path}: one column named {names[0]!r}: are the columns "
                    "separated by spaces? Separate them by , ; tab or |")


# CSV


def _open_text(path: str):
  if path.lower().endswith(".gz"):
    return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
  return open(path, encoding="utf-8-sig", newline="")


def _sample(path: str) -> tuple[list[str], str, list[list[str]], bool]:
  """Column names, delimiter, the first rows, and whether the file may be
  cut into segments at line ends: no field there is quoted (a quoted field
  may hold a line end) and lines end in LF or CR LF, not CR alone."""
  try:
    with _open_text(path) as f:
      sample = f.read(64 * 1024)
  except EOFError as error:
    raise DataError(f"{path}: the compressed file ends early ({error}); it "
                    "may be damaged or cut short: copy or export it "
                    "again") from None
  except (UnicodeDecodeError, OSError) as error:
    raise DataError(f"{path}: not readable as UTF-8 CSV text ({error}); give "
                    "a CSV (saved as UTF-8), .csv.gz, Parquet or .npy "
                    "file") from None
  if not sample.strip():
    raise DataError(f"{path}: the file is empty; give a CSV with a header row")
  try:
    delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
  except csv.Error:
    delimiter = ","
  lines = sample.splitlines()
  rows = list(csv.reader(lines[:-1] if len(lines) > 1 else lines,
                         delimiter=delimiter, skipinitialspace=True))
  cuttable = '"' not in sample and "\r" not in sample.replace("\r\n", "")
  return [n.strip() for n in rows[0]], delimiter, rows[1:], cuttable


def _unread_note(name: str, value: str) -> str:
  return (f"column {name!r} holds times like {value!r} in no format lstm_jax "
          "reads, so the rows' time order is not checked; make sure they are "
          "in time order")


def _time_columns(names: list[str], wanted: list[str]) -> list[str]:
  """The columns named like times, not among the values to read."""
  return [n for n in names if n.lower() in TIME_COLUMN_NAMES
          and n not in wanted]


def _first_null(array) -> int | None:
  """The index of the array's first null, or None."""
  if not array.null_count:
    return None
  return int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])


def _time_format(values: list[str]) -> str | None:
  """The one of TIME_FORMATS that reads most sampled values, when that is at
  least half of them: a column of times with one bad cell is still a time
  column, and the reader then names the bad cell's line."""
  sample = [v.strip() for v in values if v.strip()]

  def reads(fmt, values):
    count = 0
    for value in values:
      try:
        datetime.datetime.strptime(value, fmt)
        count += 1
      except ValueError:
        pass
    return count

  counts = {}
  for fmt in TIME_FORMATS if sample else ():
    if not reads(fmt, sample[:20]):
      continue  # (a quick look first: most formats fail on every value)
    counts[fmt] = reads(fmt, sample)
    if counts[fmt] == len(sample):
      return fmt
  best = max(counts, key=counts.get, default=None)
  return best if best and 2 * counts[best] >= len(sample) else None


def _csv_blocks(path: str, column: str | None, features,
                decimal: str = ".") -> _Reader:
  names, delimiter, sample, cuttable = _sample(path)
  if decimal == delimiter:
    raise DataError(f"{path}: --decimal={decimal} is also the file's "
                    "delimiter; a decimal comma needs another delimiter "
                    "(such as ;)")
  wanted = _wanted(path, names, column, features)
  apart = _time_columns(names, wanted)
  time_name = apart[0] if apart else None
  fmt = note = None
  if len(apart) > 1:  # e.g. MetaTrader's Date and Time
    note = (f"columns {apart[0]!r} and {apart[1]!r} hold the date and the "
            "time of day apart; lstm_jax reads one time column, so the rows' "
            "time order is not checked: join them into one to have it checked")
    time_name = None
  if time_name:
    index = names.index(time_name)
    values = [r[index] for r in sample if len(r) > index]
    fmt = _time_format(values)
    if not fmt and values:
      note = _unread_note(time_name, values[0].strip())
    time_name = time_name if fmt else None
  types = {name: pa.float64() for name in wanted}
  if time_name:  # parsed by the reader, in its threads
    types[time_name] = pa.timestamp("s")

  def problem(error):
    return DataError(_csv_problem(path, delimiter, wanted, error, time_name,
                                  fmt, decimal))

  parse = pacsv.ParseOptions(delimiter=delimiter)
  convert = pacsv.ConvertOptions(
      include_columns=wanted + ([time_name] if time_name else []),
      column_types=types, timestamp_parsers=[fmt] if fmt else None,
      null_values=["", *NULL_TOKENS], decimal_point=decimal)
  if path.lower().endswith(".gz") or not cuttable:
    batches = _streamed(path, names, parse, convert)
  else:
    batches = _segmented(path, names, parse, convert)

  def blocks():
    row = 0
    while True:
      try:
        batch = next(batches)
      except StopIteration:
        return
      except pa.ArrowInvalid as error:
        raise problem(error) from None
      except OSError as error:  # a compressed file cut short, a bad disk
        raise DataError(f"{path}: cannot be read after file line {row + 1} "
                        f"({str(error).splitlines()[0]}); the file may be "
                        "damaged or cut short: copy or export it again") from None
      values = np.column_stack(
          [batch.column(name).to_numpy(zero_copy_only=False)
           for name in wanted]) if batch.num_rows else np.zeros(
               (0, len(wanted)))
      times = None
      if time_name:
        stamps = batch.column(time_name)
        empty = _first_null(stamps)
        if empty is not None:
          raise DataError(
              f"{path}: time column {time_name!r} is empty at file line "
              f"{file_line(path, row + empty)}; fill in that row's time or "
              "remove the row")
        times = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
      yield Block(values, times, row)
      row += batch.num_rows

  return _Reader(wanted, time_name, blocks(), csv_path=path,
                 time_note=note)


def _streamed(path: str, names: list[str], parse, convert
              ) -> Iterator[pa.RecordBatch]:
  """The file's rows in BLOCK_BYTES blocks, read one after another (the
  header's names as `names`: stripped of spaces)."""
  yield from pacsv.open_csv(
      _csv_input(path), read_options=pacsv.ReadOptions(
          column_names=names, skip_rows=1, block_size=BLOCK_BYTES),
      parse_options=parse, convert_options=convert)


def _csv_input(path: str):
  """The file as pyarrow reads it, gunzipped if its name ends in .gz in any
  case (pyarrow's own detection knows only the lower-case name)."""
  gz = path.lower().endswith(".gz")
  return pa.input_stream(path, compression="gzip" if gz else None)


def _segmented(path: str, names: list[str], parse, convert
               ) -> Iterator[pa.RecordBatch]:
  """The file's rows, SEGMENT_BYTES of text at a time cut at line ends,
  each segment parsed in BLOCK_BYTES blocks by the reader's threads while
  the rows of the one before are checked and written (about twice as fast
  as one stream on two cores, in bounded memory). Only for files without
  quoted fields (which may hold line ends), with lines ending in LF."""
  options = pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES)

  def next_segment(f) -> list[pa.RecordBatch] | None:
    text = f.read(SEGMENT_BYTES)
    if not text:
      return None
    end = len(text)
    if end == SEGMENT_BYTES:  # the last line may go on: it goes next time
      end = text.rfind(b"\n") + 1
      if not end:
        raise DataError(f"{path}: a line longer than {SEGMENT_BYTES >> 20} "
                        "MB; is it a CSV file?")
      f.seek(end - len(text), os.SEEK_CUR)
    return pacsv.read_csv(pa.py_buffer(memoryview(text)[:end]),
                          read_options=options, parse_options=parse,
                          convert_options=convert).to_batches()

  with open(path, "rb") as f, ThreadPoolExecutor(1) as parser:
    f.readline()  # the header
    pending = parser.submit(next_segment, f)
    while (batches := pending.result()) is not None:
      pending = parser.submit(next_segment, f)
      yield from batches


def _csv_problem(path: str, delimiter: str, wanted: list[str],
                 error: Exception, time_name: str | None,
                 fmt: str | None, decimal: str = ".") -> str:
  """Names the first cell that is not a number, or not a time like the first
  rows' (the error path: reads the columns again as text)."""
  for name in wanted + ([time_name] if time_name else []):
    try:
      table = pacsv.read_csv(
          _csv_input(path), parse_options=pacsv.ParseOptions(delimiter=delimiter),
          convert_options=pacsv.ConvertOptions(
              include_columns=[name], column_types={name: pa.string()}))
    except pa.ArrowInvalid as parse_error:
      return (f"{path}: not readable as CSV with delimiter {delimiter!r} "
              f"({str(parse_error).splitlines()[0]}); every row needs the "
              "header's columns")
    if name == time_name:
      texts = table[name]
      parsed = pc.strptime(texts, format=fmt, unit="s", error_is_null=True)
      row = _first_null(parsed)
      if row is not None:
        return (f"{path}: time column {name!r}, file line "
                f"{file_line(path, row)}: "
                f"{texts[row].as_py()!r} is not a time like {fmt!r} (as the "
                "first rows); fix that row")
      continue
    for row, text in enumerate(table[name].to_pylist()):
      if text and not text.strip():
        return (f"{path}: column {name!r}, file line {file_line(path, row)}: "
                "a cell of spaces alone; leave it empty (a missing value) or "
                "write a number")
      if text is None or text.strip() in ("", *NULL_TOKENS):
        continue  # missing, not wrong
      try:
        if decimal != "." and "." in text:
          raise ValueError  # a point where the mark is a comma
        float(text.replace(decimal, "."))
      except ValueError:
        return (f"{path}: column {name!r}, file line {file_line(path, row)}: "
                f"{text!r} is not a number{_number_hint(text, decimal)}")
  return f"{path}: not readable as CSV ({str(error).splitlines()[0]})"


def _number_hint(text: str, decimal: str) -> str:
  digits = text.strip().lstrip("-")
  if decimal == "." and digits.replace(",", "", 1).isdigit():
    return ("; the file seems to use a decimal comma: pass --decimal=, (or "
            "write decimal points)")
  if decimal == "," and digits.replace(".", "", 1).isdigit():
    return "; with --decimal=, the decimal mark must be a comma"
  return "; fix or remove that row"


# Parquet


def _parquet_blocks(path: str, column: str | None, features) -> _Reader:
  try:
    file = pq.ParquetFile(path)
  except (pa.ArrowInvalid, OSError) as error:
    raise DataError(f"{path}: not a readable Parquet file ({error})") from None
  names = file.schema_arrow.names
  wanted = _wanted(path, names, column, features)
  time_name = next(iter(_time_columns(names, wanted)), None)
  unread = None
  if time_name:
    kind = file.schema_arrow.field(time_name).type
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
      first = file.read_row_group(0, columns=[time_name]).column(0)
      unread = _unread_note(time_name,
                            str(first[0].as_py() if len(first) else kind))
      time_name = None
  for name in wanted:
    kind = file.schema_arrow.field(name).type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
      raise DataError(f"{path}: column {name!r} holds {kind}, not numbers; "
                      "choose a numeric column")

  def blocks():
    row = 0
    for batch in file.iter_batches(
        batch_size=1 << 18, columns=wanted + ([time_name] if time_name else [])):
      values = np.column_stack([
          batch.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
          for name in wanted])
      times = None
      if time_name:
        stamps = batch.column(time_name)
        empty = _first_null(stamps)
        if empty is not None:
          raise DataError(f"{path}: time column {time_name!r} is empty at row "
                          f"{row + empty}; fill in that row's time or remove "
                          "the row")
        # Whole seconds (finer times are cut: a repeat then says so).
        times = stamps.cast(pa.timestamp("s"), safe=False).cast(
            pa.int64()).to_numpy(zero_copy_only=False)
      yield Block(values, times, row)
      row += batch.num_rows

  return _Reader(wanted, time_name, blocks(), time_note=unread)


# .npy


def _npy_blocks(path: str, column: str | None, features) -> _Reader:
  try:
    array, mapped = map_npy(Path(path))
  except (ValueError, OSError, EOFError) as error:
    raise DataError(f"{path}: not a readable .npy array ({error}); save it "
                    "with numpy.save") from None
  if array.ndim == 1:
    array = array[:, None]
    names = ["value"]
    column = column or "value"
  elif array.ndim == 2:
    names = [str(i) for i in range(array.shape[1])]
    if column is None or column not in names:
      raise DataError(
          f"{path}: a 2-D array needs --column set to a column index below "
          f"{array.shape[1]}")
  else:
    raise DataError(f"{path}: a {array.ndim}-D array; save a 1-D or 2-D one")
  if array.dtype.kind not in "iuf":  # (complex: which part to read?)
    raise DataError(f"{path}: holds {array.dtype} values; save real numbers "
                    "(integers or floats)")
  wanted = _wanted(path, names, column, features)
  columns = [names.index(n) for n in wanted]

  def blocks():
    for lo in range(0, array.shape[0], 1 << 20):
      block = np.asarray(array[lo:lo + (1 << 20)][:, columns], np.float64)
      mapped.madvise(mmap.MADV_DONTNEED)  # what was read leaves memory
      yield Block(block, None, lo)

  return _Reader(wanted, None, blocks())
