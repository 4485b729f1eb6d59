"""Preparing a data file once into the cache, and when it is rebuilt."""

import gzip
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstm_jax.data import DataError, ReadOptions, read_series
from lstm_jax.data.prepare import prepare

CSV = ("timestamp,open,high,low,close,volume\n"
       "2024-01-01 00:00:00,1.0,2.0,0.5,1.5,10\n"
       "2024-01-01 00:01:00,1.5,2.5,1.0,2.0,11\n"
       "2024-01-01 00:02:00,2.0,3.0,1.5,2.5,12\n"
       "2024-01-01 00:05:00,2.5,3.5,2.0,3.0,13\n")


def test_a_csv_is_prepared_with_its_metadata(tmp_path):
  source = tmp_path / "bars.csv"
  source.write_text(CSV)
  prepared = prepare(str(source), "close", ("open", "close", "volume"),
                     tmp_path / "cache")
  np.testing.assert_array_equal(
      prepared.values, [[1.5, 1.0, 10], [2.0, 1.5, 11], [2.5, 2.0, 12],
                        [3.0, 2.5, 13]])
  assert prepared.values.dtype == np.float32
  assert prepared.maps and not prepared.values.flags.writeable  # mapped
  meta = prepared.meta
  assert meta["columns"] == ["close", "open", "volume"]
  assert meta["rows"] == 4 and meta["time_column"] == "timestamp"
  assert (meta["first_time"], meta["last_time"]) == ("2024-01-01 00:00:00",
                                                     "2024-01-01 00:05:00")
  assert (meta["time_step_seconds"], meta["gaps"],
          meta["largest_gap_seconds"]) == (60, 1, 180)
  assert meta["size"] == source.stat().st_size
  assert meta["source"] == str(source.resolve())
  assert len(meta["hash"]) == 16
  assert prepared.times[3] - prepared.times[0] == 300
  # Nothing is written beside the source.
  assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.csv", "cache"]


def test_gzip_parquet_and_npy_give_the_same_values(tmp_path):
  plain = tmp_path / "bars.csv"
  plain.write_text(CSV)
  zipped = tmp_path / "bars.csv.gz"
  zipped.write_bytes(gzip.compress(CSV.encode()))
  table = pa.table({
      "timestamp": pa.array(np.array(
          ["2024-01-01T00:00", "2024-01-01T00:01", "2024-01-01T00:02",
           "2024-01-01T00:05"], "datetime64[s]")),
      "close": [1.5, 2.0, 2.5, 3.0], "open": [1.0, 1.5, 2.0, 2.5]})
  pq.write_table(table, tmp_path / "bars.parquet")
  np.save(tmp_path / "bars.npy", np.array([[1.0, 1.5], [1.5, 2.0],
                                           [2.0, 2.5], [2.5, 3.0]]))
  cache = tmp_path / "cache"
  want = [[1.5, 1.0], [2.0, 1.5], [2.5, 2.0], [3.0, 2.5]]
  for path, column, features in [
      (plain, "close", ("open",)), (zipped, "close", ("open",)),
      (tmp_path / "bars.parquet", "close", ("open",)),
      (tmp_path / "bars.npy", "1", ("0",))]:
    series = read_series(str(path), column, features, cache)
    np.testing.assert_array_equal(series.values, want)
  parquet = read_series(str(tmp_path / "bars.parquet"), "close", (), cache)
  assert parquet.time_at(3) == "2024-01-01 00:05:00"


def test_reused_while_the_source_is_unchanged_rebuilt_when_it_changes(
    tmp_path):
  source = tmp_path / "bars.csv"
  source.write_text(CSV)
  cache = tmp_path / "cache"
  first = prepare(str(source), "close", (), cache)
  written = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
  again = prepare(str(source), "close", (), cache)
  assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == written
  assert again.meta == first.meta
  # Another row: size and modification time change, so it is prepared anew.
  source.write_text(CSV + "2024-01-01 00:06:00,3,4,2,3.5,14\n")
  changed = prepare(str(source), "close", (), cache)
  assert changed.meta["rows"] == 5 and changed.values[-1, 0] == 3.5
  assert changed.meta["hash"] != first.meta["hash"]
  # Same size, new modification time (an edit in place): rebuilt too.
  text = source.read_text().replace("3.5,14", "3.6,14")
  source.write_text(text)
  os.utime(source, ns=(source.stat().st_atime_ns,
                       source.stat().st_mtime_ns + 10**9))
  assert prepare(str(source), "close", (), cache).values[-1, 0] == np.float32(
      3.6)
  # A different selection of columns is a different cache entry.
  prepare(str(source), "close", ("open",), cache)
  assert len(list(cache.glob("*.json"))) == 2
  for meta in cache.glob("*.json"):
    json.loads(meta.read_text())


def test_a_broken_cache_entry_is_prepared_again(tmp_path):
  source = tmp_path / "bars.csv"
  source.write_text(CSV)
  cache = tmp_path / "cache"
  first = prepare(str(source), "close", (), cache)
  (values,) = cache.glob("*[0-9a-f].npy")
  values.unlink()  # e.g. removed by a cache cleaner
  again = prepare(str(source), "close", (), cache)
  np.testing.assert_array_equal(again.values, first.values)
  (meta,) = cache.glob("*.json")
  meta.write_text("{")  # cut short
  assert prepare(str(source), "close", (), cache).meta == first.meta
  for size in (200, 0):  # the array cut short, then emptied
    os.truncate(values, size)
    again = prepare(str(source), "close", (), cache)
    np.testing.assert_array_equal(again.values, first.values)


@pytest.mark.parametrize("name,text", [
    ("mac.csv", CSV.replace("\n", "\r")),  # old Mac line ends: CR alone
    ("spaced.csv", '"timestamp", "open", "high", "low", "close", "volume"\n'
     + CSV.split("\n", 1)[1]),  # quoted names with spaces: streamed
    ("spaced.csv.gz", CSV.replace(",", ", ", 5)),
    ("BARS.CSV.GZ", CSV),
])
def test_odd_but_sound_csv_files_read_alike(tmp_path, name, text):
  source = tmp_path / name
  data = text.encode()
  source.write_bytes(gzip.compress(data) if name.lower().endswith(".gz")
                     else data)
  prepared = prepare(str(source), "close", ("open",), tmp_path / "cache")
  np.testing.assert_array_equal(prepared.values, [[1.5, 1.0], [2.0, 1.5],
                                                  [2.5, 2.0], [3.0, 2.5]])
  assert prepared.meta["time_column"] == "timestamp"


def test_upper_case_extensions(tmp_path):
  np.save(tmp_path / "a.npy", np.array([[1.0, 2.0], [3.0, 4.0]]))
  (tmp_path / "a.npy").rename(tmp_path / "A.NPY")
  pq.write_table(pa.table({"close": [1.5, 2.0]}), tmp_path / "b.PARQUET")
  cache = tmp_path / "cache"
  np.testing.assert_array_equal(
      prepare(str(tmp_path / "A.NPY"), "1", (), cache).values, [[2], [4]])
  np.testing.assert_array_equal(
      prepare(str(tmp_path / "b.PARQUET"), "close", (), cache).values,
      [[1.5], [2.0]])


def test_damaged_or_odd_files_are_one_line(tmp_path):
  cache = tmp_path / "cache"
  np.save(tmp_path / "c.npy", np.array([1 + 2j, 3 + 4j]))
  with pytest.raises(DataError, match=r"c.npy: holds complex128 values; save "
                     "real numbers"):
    prepare(str(tmp_path / "c.npy"), "0", (), cache)
  long = gzip.compress(("value\n" + "".join(
      f"{i * 0.5}\n" for i in range(200000))).encode())
  cut = tmp_path / "cut.csv.gz"
  for size, message in [(200000, r"cannot be read after file line \d+ "),
                        (2000, "the compressed file ends early ")]:
    cut.write_bytes(long[:size])  # a download cut short, late or early
    with pytest.raises(DataError, match=rf"cut.csv.gz: {message}.*may be "
                       "damaged or cut short"):
      prepare(str(cut), "value", (), cache)


@pytest.mark.parametrize("header,end", [
    ("time,value", "\n"),  # cut into segments at line ends, parsed by threads
    ("time,value", "\r\n"),
    ('"time","value"', "\n"),  # quoted fields: streamed, block by block
])
def test_a_large_file_is_read_in_blocks(tmp_path, monkeypatch, header, end):
  import lstm_jax.data.prepare as module
  monkeypatch.setattr(module, "BLOCK_BYTES", 4096)  # many blocks
  monkeypatch.setattr(module, "SEGMENT_BYTES", 10007)  # cuts inside lines
  rows = 20000
  t = np.datetime64("2024-01-01T00:00") + np.arange(rows).astype(
      "timedelta64[m]")
  values = np.round(np.random.default_rng(0).normal(size=rows), 4)
  lines = [f"{str(s).replace('T', ' ')},{v}" for s, v in zip(t, values,
                                                             strict=True)]
  source = tmp_path / "long.csv"
  source.write_bytes((header + end + end.join(lines) + end).encode())
  series = read_series(str(source), "value", (), tmp_path / "cache")
  np.testing.assert_array_equal(series.values[:, 0], values.astype(np.float32))
  np.testing.assert_array_equal(np.diff(series.times), 60)
  assert series.meta["gaps"] == 0 and series.meta["rows"] == rows
  # An unsorted row deep inside the file is found across block seams.
  lines[15000], lines[15001] = lines[15001], lines[15000]
  source.write_bytes((header + end + end.join(lines) + end).encode())
  with pytest.raises(DataError, match="goes back at file line 15003"):
    read_series(str(source), "value", (), tmp_path / "cache")
  # Nor is a bad cell lost at a seam.
  lines[15000] = lines[15001].replace(",", ",x")
  source.write_bytes((header + end + end.join(lines)).encode())  # no last end
  with pytest.raises(DataError, match="file line 15002: 'x"):
    read_series(str(source), "value", (), tmp_path / "cache")


@pytest.mark.parametrize("features,message", [
    (("opne",), r"no column 'opne' \(--features\).*did you mean "
     "--features=open"),
    (("open", "open"), r"repeats a column"),
])
def test_bad_features(tmp_path, features, message):
  source = tmp_path / "bars.csv"
  source.write_text(CSV)
  with pytest.raises(DataError, match=message):
    prepare(str(source), "close", features, tmp_path / "cache")


def test_an_unwritable_cache_is_named(tmp_path):
  source = tmp_path / "bars.csv"
  source.write_text(CSV)
  blocker = tmp_path / "file"
  blocker.write_text("")
  with pytest.raises(DataError, match="cannot create the cache directory"):
    prepare(str(source), "close", (), blocker / "cache")


def _with_gaps(rows: int, seed: int = 0):
  """Two columns with runs of missing cells (NaN), some at the very start
  and the very end."""
  rng = np.random.default_rng(seed)
  values = np.round(rng.normal(size=(rows, 2)), 4)
  holes = rng.random((rows, 2)) < 0.05
  holes[:3, 0] = holes[-2:, 1] = True  # nothing before / after these
  holes[5000:5400, 1] = True  # a run longer than a block
  values[holes] = np.nan
  return values


def _reference(values: np.ndarray, policy: str) -> np.ndarray:
  """The policies on the whole array at once."""
  out = values.copy()
  rows = np.arange(len(out))
  for col in range(out.shape[1]):
    known = ~np.isnan(out[:, col])
    if policy == "interpolate":
      filled = np.interp(rows, rows[known], out[known, col])
      filled[(rows < rows[known][0]) | (rows > rows[known][-1])] = np.nan
    else:  # ffill
      filled = out[:, col].copy()
      for r in range(1, len(filled)):
        if np.isnan(filled[r]):
          filled[r] = filled[r - 1]
    out[:, col] = filled
  return out[~np.isnan(out).any(axis=1)]


@pytest.mark.parametrize("policy", ["ffill", "interpolate", "drop"])
def test_missing_values_are_filled_across_block_seams(tmp_path, monkeypatch,
                                                      policy):
  import lstm_jax.data.prepare as module
  monkeypatch.setattr(module, "BLOCK_BYTES", 4096)  # about 250 rows a block
  values = _with_gaps(20000)
  text = "\n".join(",".join("" if np.isnan(v) else f"{v}" for v in row)
                   for row in values)
  source = tmp_path / "holes.csv"
  source.write_text("a,b\n" + text + "\n")
  series = read_series(str(source), "a", ("b",), tmp_path / "cache",
                       ReadOptions(missing=policy))
  expected = (values[~np.isnan(values).any(axis=1)] if policy == "drop"
              else _reference(values, policy))
  np.testing.assert_allclose(series.values, expected.astype(np.float32),
                             rtol=1e-6)
  stats = series.meta["missing"]
  assert stats["cells"] == int(np.isnan(values).sum())
  assert stats["rows_dropped"] == len(values) - len(expected)


def test_missing_values_keep_their_times_and_tokens(tmp_path):
  source = tmp_path / "m.csv"
  source.write_text("date,a\n2024-01-01,1\n2024-01-02,-\n2024-01-03,NA\n"
                    "2024-01-04,4\n2024-01-05,null\n")
  kept = read_series(str(source), "a", (), tmp_path / "cache",
                     ReadOptions(missing="interpolate"))
  np.testing.assert_array_equal(kept.values[:, 0], [1, 2, 3, 4])
  assert kept.time_at(3) == "2024-01-04 00:00:00"  # the last row is dropped
  dropped = read_series(str(source), "a", (), tmp_path / "cache",
                        ReadOptions(missing="drop"))
  np.testing.assert_array_equal(dropped.values[:, 0], [1, 4])
  assert [dropped.time_at(i) for i in range(2)] == [
      "2024-01-01 00:00:00", "2024-01-04 00:00:00"]
  assert dropped.meta["rows"] == 2
  assert dropped.meta["read_options"] == {"missing": "drop", "decimal": "."}


def test_a_decimal_comma_is_read_when_asked(tmp_path):
  source = tmp_path / "comma.csv"
  source.write_text("date;price\n2024.01.01 00:00;1,5\n2024.01.02 00:00;-2,25"
                    "\n")
  series = read_series(str(source), "price", (), tmp_path / "cache",
                       ReadOptions(decimal=","))
  np.testing.assert_array_equal(series.values[:, 0], [1.5, -2.25])
  with pytest.raises(DataError, match="pass --decimal=,"):
    read_series(str(source), "price", (), tmp_path / "cache")
  points = tmp_path / "points.csv"
  points.write_text("a;b\n1.5;2\n")
  with pytest.raises(DataError, match="with --decimal=, the decimal mark "
                     "must be a comma"):
    read_series(str(points), "a", (), tmp_path / "cache",
                ReadOptions(decimal=","))
  clash = tmp_path / "clash.csv"
  clash.write_text("a,b\n1,2\n")
  with pytest.raises(DataError, match="is also the file's delimiter"):
    read_series(str(clash), "a", (), tmp_path / "cache",
                ReadOptions(decimal=","))


def test_parquet_times_of_other_units_and_types(tmp_path):
  import datetime

  cache, hours = tmp_path / "cache", np.arange(100).astype("timedelta64[h]")
  stamps = (np.datetime64("2020-01-01T00:00:00.000") + hours).astype(
      "datetime64[ms]")
  pq.write_table(pa.table({"date": stamps, "v": np.arange(100.0)}),
                 tmp_path / "ms.parquet")  # milliseconds: whole seconds kept
  assert prepare(str(tmp_path / "ms.parquet"), "v", (), cache).meta[
      "time_step_seconds"] == 3600
  days = [datetime.date(2020, 1, 1) + datetime.timedelta(days=i)
          for i in range(100)][::-1]
  pq.write_table(pa.table({"date": pa.array(days, pa.date32()),
                           "v": np.arange(100.0)}), tmp_path / "back.parquet")
  with pytest.raises(DataError, match="time column 'date' goes back at row 1"):
    prepare(str(tmp_path / "back.parquet"), "v", (), cache)
  holes = list(stamps.astype(object))
  holes[50] = None
  pq.write_table(pa.table({"date": pa.array(holes, pa.timestamp("ms")),
                           "v": np.arange(100.0)}), tmp_path / "hole.parquet")
  with pytest.raises(DataError, match="time column 'date' is empty at row 50"):
    prepare(str(tmp_path / "hole.parquet"), "v", (), cache)
  pq.write_table(pa.table({"date": [str(s) for s in stamps],
                           "v": np.arange(100.0)}), tmp_path / "text.parquet")
  series = read_series(str(tmp_path / "text.parquet"), "v", (), cache)
  assert "column 'date' holds times like '2020-01-01T00:00:00.000' in no " \
      "format" in series.time_note()


def test_day_first_dates_after_a_slash(tmp_path):
  source = tmp_path / "days.csv"
  source.write_text("date,v\n" + "".join(f"{d:02d}/01/2020,{d}\n"
                                         for d in range(1, 21)))
  prepared = prepare(str(source), "v", (), tmp_path / "cache")
  assert (prepared.meta["first_time"], prepared.meta["last_time"]) == (
      "2020-01-01 00:00:00", "2020-01-20 00:00:00")
