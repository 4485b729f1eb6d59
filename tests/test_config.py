"""Presets, validation, grid enumeration and flags made from the dataclass."""

import dataclasses

import pytest
from absl import flags

from experiments.config_flags import config_from_flags, define_config_flags
from lstm_jax.config import (
    PRESETS,
    ConfigError,
    LSTMConfig,
    Variant,
    architectures,
    make_config,
    variants,
)


def test_defaults_and_default_grid_has_84_configurations():
  config = make_config()
  assert config == LSTMConfig()
  assert (config.epochs, config.batch_size) == (50, 256)
  assert config.units == (128, 192, 256, 320, 384, 448, 512)
  assert len(architectures(config)) * len(variants(config)) == 84
  assert variants(config)[1] == Variant(0.1, 1e-3, 0)


def test_variants_are_the_product_of_dropouts_learning_rates_and_seeds():
  config = make_config(dropouts=(0.0, 0.2), learning_rates=(1e-3, 1e-2),
                       seeds=(3, 4, 5))
  table = variants(config)
  assert len(table) == 12 and len(set(table)) == 12
  assert table[0] == Variant(0.0, 1e-3, 3) and table[-1] == Variant(0.2, 1e-2, 5)
  assert {v.seed for v in variants(make_config(seed=7))} == {7}


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
    (dict(learning_rates=()), "--learning_rates is empty"),
    (dict(learning_rates=(1e-3, 0.0)), "--learning_rates=0.001,0.0"),
    (dict(learning_rates=(float("inf"),)), "--learning_rates=inf: each must "
     "be positive and finite"),
    (dict(test_rows=-1), "--train_rows, --val_rows and --test_rows must not "
     "be negative"),
    (dict(learning_rates=(1e-3, 1e-3)), "repeats a rate"),
    (dict(seeds=(1, 1)), "--seeds=1,1 repeats"),
    (dict(seeds=(-1,)), r"--seed and --seeds must lie in \[0, 2\*\*32\)"),
    (dict(seed=2**32), r"--seed and --seeds must lie in \[0, 2\*\*32\)"),
    (dict(min_delta=-1e-3), "--min_delta=-0.001"),
    (dict(lr_patience=-1), "--lr_patience=-1"),
    (dict(lr_factor=1.0), "--lr_factor=1.0"),
    (dict(min_learning_rate=-1.0), "--min_learning_rate=-1.0"),
    (dict(clip_norm=-1.0), "--clip_norm=-1.0"),
    (dict(weight_decay=-0.1), "--weight_decay=-0.1"),
    (dict(checkpoint_steps=0), "--checkpoint_steps=0"),
    (dict(checkpoint_minutes=0.0), "--checkpoint_minutes=0.0"),
    (dict(horizon=0), "--horizon=0"),
    (dict(target="returns"), "--target=returns is unknown"),
    (dict(season=-1), "--season=-1"),
    (dict(chunk_windows=0), "--chunk_windows=0"),
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
