"""Presets, validation, grid enumeration and flags made from the dataclass."""

import dataclasses

import pytest
from absl import flags

from experiments.config_flags import config_from_flags, define_config_flags
from lstm_jax.config import (
    PRESETS,
    ConfigError,
    LSTMConfig,
    architectures,
    make_config,
)


def test_defaults_and_default_grid_has_84_configurations():
  config = make_config()
  assert config == LSTMConfig()
  assert (config.epochs, config.batch_size, config.learning_rate) == (50, 256, 1e-3)
  assert config.units == (128, 192, 256, 320, 384, 448, 512)
  assert len(architectures(config)) * len(config.dropouts) == 84


def test_presets():
  aggressive = make_config("aggressive")
  assert aggressive.units_range == (256, 1024) and aggressive.epochs == 100
  assert (aggressive.optimization_train_window,
          aggressive.optimization_val_window) == (20000, 2000)
  ultra = make_config("ultra_conservative")
  assert ultra.units == (64, 128, 192, 256)
  assert ultra.optimization_val_window == 500
  assert set(PRESETS) == {"conservative", "aggressive", "ultra_conservative",
                          "demo"}


@pytest.mark.parametrize("overrides,flag", [
    (dict(units_range=(256, 128)), "--units_min=256 is larger"),
    (dict(units_step=0), "--units_step=0"),
    (dict(dropouts=(0.1, 1.0)), "--dropouts=0.1,1.0"),
    (dict(dropouts=(-0.1,)), "--dropouts=-0.1"),
    (dict(layers=(0, 1)), "--layers=0,1"),
    (dict(batch_size=0), "--batch_size=0"),
    (dict(epochs=-1), "--epochs=-1"),
    (dict(sequence_length=0), "--sequence_length=0"),
    (dict(train_fraction=0.8), "sum to 1.1"),
    (dict(train_rows=100), "--train_rows and --val_rows"),
])
def test_invalid_settings_name_the_flag(overrides, flag):
  with pytest.raises(ConfigError, match=flag):
    make_config(**overrides)


def test_unknown_preset():
  with pytest.raises(ConfigError, match="--preset='huge' is unknown"):
    make_config("huge")


def _parse(argv):
  values = flags.FlagValues()
  define_config_flags(flag_values=values)
  values(["grid", *argv])
  return values


def test_every_field_is_a_flag():
  values = _parse([])
  for field in dataclasses.fields(LSTMConfig):
    for name in field.metadata.get("flags", (field.name,)):
      assert name in values, name


def test_explicit_flags_override_the_preset_and_only_they_do():
  values = _parse(["--units_min=32", "--layers=1,2", "--dropouts=0,0.5"])
  config, explicit = config_from_flags("aggressive", values)
  assert config.units_range == (32, 1024)  # upper end still the preset's
  assert config.layers == (1, 2) and config.dropouts == (0.0, 0.5)
  assert config.epochs == 100  # the preset's, not the dataclass default
  assert explicit == {"units_range", "layers", "dropouts"}


def test_bad_list_flag():
  with pytest.raises(ConfigError, match="--layers=1,two"):
    config_from_flags("demo", _parse(["--layers=1,two"]))
