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


def _dataset(values, **overrides):
  config = make_config(sequence_length=5, optimization_train_window=20,
                       optimization_val_window=10, **overrides)
  return prepare_dataset(Series(np.asarray(values, float), "x", "test"),
                         config)[0]


def test_scaler_ignores_everything_after_the_training_split():
  values = np.sin(np.arange(300) / 7.0)
  shifted = values.copy()
  shifted[210:] += 1000.0  # validation and test parts only
  a, b = _dataset(values), _dataset(shifted)
  assert a.splits.train_end == 210
  assert (a.scaler.mean, a.scaler.std) == (b.scaler.mean, b.scaler.std)
  assert a.scaler.mean == pytest.approx(np.mean(values[:210]))


def test_targets_stay_inside_their_split():
  data = _dataset(np.arange(300.0))
  s, length = data.splits, data.config.sequence_length
  train, val = data.fit_windows()
  test = data.test_windows()
  for starts, lo, hi in [(train, length, s.train_end),
                         (val, s.train_end, s.val_end),
                         (test, s.val_end, s.test_end)]:
    targets = starts + length
    assert targets.min() == lo and targets.max() == hi - 1
    assert len(targets) == hi - lo  # every target row of the split, once
  # Validation and test windows may read the known past as inputs.
  assert val.min() == s.train_end - length


def test_search_windows_border_each_other():
  data = _dataset(np.arange(300.0))
  train, val = data.search_windows()
  length, end = data.config.sequence_length, data.splits.train_end
  np.testing.assert_array_equal(train + length, np.arange(end - 20, end))
  np.testing.assert_array_equal(val + length, np.arange(end, end + 10))


def test_split_by_row_counts():
  config = make_config(sequence_length=5, train_rows=50, val_rows=20,
                       test_rows=10)
  splits = split_rows(100, config, "test")
  assert (splits.train_end, splits.val_end, splits.test_end) == (50, 70, 80)


def test_too_short_series_says_how_many_rows_are_needed():
  with pytest.raises(DataError, match=r"30 rows are too few.*at least \d+ rows"):
    split_rows(30, make_config(sequence_length=60), "short.csv")


def test_default_windows_shrink_and_explicit_ones_must_fit():
  series = Series(np.arange(300.0), "x", "test")
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
  assert etth.values.shape == (17420,)
  assert etth.values[0] == pytest.approx(30.5310001373291)
  assert etth.time_at(0) == "2016-07-01 00:00:00"
  gold = read_series(str(shared_data / "XAU_1d.csv"), "Close")  # ';' separated
  assert gold.values.shape == (5391,)
  assert gold.values[0] == pytest.approx(384.1)
  assert gold.time_at(0) == "2004.06.11 00:00"


def test_csv_with_bom_crlf_and_gzip(tmp_path):
  text = "\ufefftime;value\r\n1;1.5\r\n2;2.5\r\n3;-4\r\n"
  plain = tmp_path / "a.csv"
  plain.write_bytes(text.encode())
  zipped = tmp_path / "a.csv.gz"
  zipped.write_bytes(gzip.compress(text.encode()))
  for path in (plain, zipped):
    series = read_series(str(path), "value")
    np.testing.assert_array_equal(series.values, [1.5, 2.5, -4.0])


def test_npy_one_and_two_dimensional(tmp_path):
  np.save(tmp_path / "one.npy", np.arange(5.0))
  np.save(tmp_path / "two.npy", np.arange(10.0).reshape(5, 2))
  assert read_series(str(tmp_path / "one.npy"), None).values[-1] == 4.0
  np.testing.assert_array_equal(
      read_series(str(tmp_path / "two.npy"), "1").values, [1, 3, 5, 7, 9])


@pytest.mark.parametrize("content,column,message", [
    ("a,b\n1,2\n", "c", r"no column 'c'; the columns are a, b"),
    ("price,b\n1,2\n", "prise", r"did you mean --column=price"),
    ("a\n1\nabc\n3\n", "a", r"file line 3: 'abc' is not a number"),
    ("t,a\n1,1\n2,\n3,NaN\n4,5\n", "a", r"2 missing values.*lines 3, 4"),
    ("a\n1\ninf\n", "a", r"infinite value at file line 3"),
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
