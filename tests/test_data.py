"""Reading, splitting, scaling and windowing: exact answers."""

import gzip

import numpy as np
import pytest

from lstm_jax.config import ConfigError, make_config
from lstm_jax.data import (
    DataError,
    Series,
    demo_series,
    prepare_dataset,
    read_series,
    split_rows,
)


def _dataset(values, names="x", **overrides):
  config = make_config(sequence_length=5, optimization_train_window=20,
                       optimization_val_window=10, **overrides)
  return prepare_dataset(Series.from_values(values, names, "test"), config)[0]


def test_scaler_ignores_everything_after_the_training_split():
  values = np.sin(np.arange(300) / 7.0)
  shifted = values.copy()
  shifted[210:] += 1000.0  # validation and test parts only
  a, b = _dataset(values), _dataset(shifted)
  assert a.splits.train_end == 210
  np.testing.assert_array_equal(a.scaler.mean, b.scaler.mean)
  np.testing.assert_array_equal(a.scaler.std, b.scaler.std)
  train = values[:210].astype(np.float32)
  assert a.scaler.mean[0] == pytest.approx(np.mean(train), rel=1e-6)
  assert a.scaler.std[0] == pytest.approx(np.std(train), rel=1e-6)


def test_each_feature_is_scaled_with_its_own_training_statistics():
  rng = np.random.default_rng(0)
  values = np.column_stack([rng.normal(5, 2, 300), rng.normal(-100, 30, 300)])
  data = _dataset(values, ("a", "b"))
  scaled = data.scaled(0, data.splits.train_end)
  np.testing.assert_allclose(scaled.mean(axis=0), [0, 0], atol=1e-5)
  np.testing.assert_allclose(scaled.std(axis=0), [1, 1], rtol=1e-5)
  assert data.features == 2


def _targets(lo, hi, length):
  return np.arange(lo, hi) + length


def test_targets_stay_inside_their_split():
  data = _dataset(np.arange(300.0))
  s, length = data.splits, data.config.sequence_length
  loader, val = data.fit_data()
  test = data.test_data()
  for targets, lo, hi in [
      (_targets(loader.first, loader.end, length), length, s.train_end),
      (val.offset + val.starts + length, s.train_end, s.val_end),
      (test.offset + test.starts + length, s.val_end, s.test_end)]:
    assert targets.min() == lo and targets.max() == hi - 1
    assert len(targets) == hi - lo  # every target row of the split, once
  # Validation and test windows may read the known past as inputs.
  assert val.offset == s.train_end - length
  # The rows a held window set carries are the scaled series' rows.
  np.testing.assert_array_equal(val.rows, data.scaled(val.offset, s.val_end))


def test_search_windows_border_each_other():
  data = _dataset(np.arange(300.0))
  loader, val = data.search_data()
  length, end = data.config.sequence_length, data.splits.train_end
  np.testing.assert_array_equal(_targets(loader.first, loader.end, length),
                                np.arange(end - 20, end))
  np.testing.assert_array_equal(val.offset + val.starts + length,
                                np.arange(end, end + 10))


def test_split_by_row_counts():
  config = make_config(sequence_length=5, train_rows=50, val_rows=20,
                       test_rows=10)
  splits = split_rows(100, config, "test")
  assert (splits.train_end, splits.val_end, splits.test_end) == (50, 70, 80)


def test_too_short_series_says_how_many_rows_are_needed():
  with pytest.raises(DataError, match=r"30 rows are too few.*at least \d+ rows"):
    split_rows(30, make_config(sequence_length=60), "short.csv")


def test_default_windows_shrink_and_explicit_ones_must_fit():
  series = Series.from_values(np.arange(300.0), "x", "test")
  config = make_config(sequence_length=5)
  data, notes = prepare_dataset(series, config)
  assert data.config.optimization_train_window == 210 - 5
  assert data.config.optimization_val_window == 45
  assert len(notes) == 2
  with pytest.raises(ConfigError, match="--optimization_val_window=1000"):
    prepare_dataset(series, config,
                    explicit=frozenset({"optimization_val_window"}))


def test_constant_training_split_is_rejected():
  with pytest.raises(DataError, match="constant"):
    _dataset(np.ones(300))


def test_real_files_load(shared_data):
  etth = read_series(str(shared_data / "ETTh1.csv"), "OT")
  assert etth.values.shape == (17420, 1)
  assert etth.values[0, 0] == np.float32(30.5310001373291)
  assert etth.time_at(0) == "2016-07-01 00:00:00"
  assert etth.time_at(17419) == "2018-06-26 19:00:00"
  gold = read_series(str(shared_data / "XAU_1d.csv"), "Close",
                     ("Open", "High", "Low", "Close"))  # ';' separated
  assert gold.values.shape == (5391, 4)
  assert gold.names == ("Close", "Open", "High", "Low")  # the target first
  assert gold.values[0, 0] == np.float32(384.1)
  assert gold.time_at(0) == "2004-06-11 00:00:00"  # read as "2004.06.11 00:00"
  assert gold.meta["time_step_seconds"] == 86400 and gold.meta["gaps"] > 0


def test_csv_with_bom_crlf_and_gzip(tmp_path):
  text = "\ufefftime;value\r\n1;1.5\r\n2;2.5\r\n3;-4\r\n"
  plain = tmp_path / "a.csv"
  plain.write_bytes(text.encode())
  zipped = tmp_path / "a.csv.gz"
  zipped.write_bytes(gzip.compress(text.encode()))
  for path in (plain, zipped):
    series = read_series(str(path), "value")
    np.testing.assert_array_equal(series.values[:, 0], [1.5, 2.5, -4.0])


def test_npy_one_and_two_dimensional(tmp_path):
  np.save(tmp_path / "one.npy", np.arange(5.0))
  np.save(tmp_path / "two.npy", np.arange(10.0).reshape(5, 2))
  assert read_series(str(tmp_path / "one.npy"), None).values[-1, 0] == 4.0
  np.testing.assert_array_equal(
      read_series(str(tmp_path / "two.npy"), "1").values[:, 0], [1, 3, 5, 7, 9])
  both = read_series(str(tmp_path / "two.npy"), "1", ("0",))
  np.testing.assert_array_equal(both.values[1], [3, 2])


@pytest.mark.parametrize("content,column,message", [
    ("a,b\n1,2\n", "c", r"no column .c. \(--column\); the columns are a, b"),
    ("price,b\n1,2\n", "prise", r"did you mean --column=price"),
    ("a\n1\nabc\n3\n", "a", r"file line 3: 'abc' is not a number"),
    ("t;a\n1;1\n2;2,5\n", "a", r"file line 3: '2,5' is not a number; the "
     "file seems to use a decimal comma: pass --decimal=,"),
    ("a,b\n1,2\n3,4,5\n", "a", r"not readable as CSV with delimiter ','.*"
     "Expected 2 columns, got 3"),
    ("t,a\n1,1\n2,\n3,NaN\n4,5\n", "a", r"2 missing values \(empty, NaN, NA, "
     r"null or - cells\) in column 'a' \(2\), first at file lines 3, 4; fill "
     "them in, or choose --missing=ffill"),
    ("a\n1\ninf\n", "a", r"infinite values \(first at file line 3"),
    ("date,a\n2020-01-02,1\n2020-01-01,2\n", "a", r"time column 'date' goes "
     r"back at file line 3 \(2020-01-02 00:00:00 then 2020-01-01"),
    ("date,a\n2020-01-01,1\n2020-01-01,2\n", "a", r"'date' repeats at file "
     "line 3"),
    ("date,a\n2020-01-01,1\nsoon,2\n", "a", r"file line 3: 'soon' is not a "
     "time like"),
    ("a\n", "a", r"a header but no rows"),
    ("", "a", r"empty"),
])
def test_bad_files_get_one_clear_message(tmp_path, content, column, message):
  path = tmp_path / "bad.csv"
  path.write_text(content)
  with pytest.raises(DataError, match=message) as error:
    read_series(str(path), column)
  assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_binary_csv_and_broken_npy(tmp_path):
  binary = tmp_path / "binary.csv"
  binary.write_bytes(b"v\n1\n" + bytes(range(128, 256)))
  with pytest.raises(DataError, match="not readable as UTF-8 CSV text"):
    read_series(str(binary), "v")
  broken = tmp_path / "broken.npy"
  broken.write_text("not numpy")
  with pytest.raises(DataError, match="not a readable .npy array"):
    read_series(str(broken), None)


def test_row_counts_larger_than_the_file():
  config = make_config(sequence_length=5, train_rows=50, val_rows=20,
                       test_rows=1000)
  with pytest.raises(DataError, match="ask for 1070 rows but there are 100"):
    split_rows(100, config, "f.csv")


def test_missing_path_and_directory(tmp_path):
  with pytest.raises(DataError, match="no such file"):
    read_series(str(tmp_path / "nope.csv"), "a")
  with pytest.raises(DataError, match="is a directory"):
    read_series(str(tmp_path), "a")


def test_demo_series_is_deterministic_and_labelled():
  a, b = demo_series(), demo_series()
  np.testing.assert_array_equal(a.values, b.values)
  assert "synthetic" in a.source
