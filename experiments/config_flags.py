"""absl flags generated from the fields of `LSTMConfig`, written once.

A field with `flags` metadata (a pair such as `units_range`) becomes one
flag per element; tuples become comma-separated list flags.
"""

from __future__ import annotations

import dataclasses
import sys
import typing

from absl import flags

from lstm_jax.config import PRESETS, ConfigError, LSTMConfig, make_config

_SCALARS = {int: flags.DEFINE_integer, float: flags.DEFINE_float,
            str: flags.DEFINE_string, bool: flags.DEFINE_bool}


def define_config_flags(cls=LSTMConfig, flag_values=flags.FLAGS) -> None:
  hints = typing.get_type_hints(cls)
  defaults = cls()
  for field in dataclasses.fields(cls):
    default, help_text = getattr(defaults, field.name), field.metadata["help"]
    pair = field.metadata.get("flags")
    if pair:
      for name, value, end in zip(pair, default, ("lower", "upper"), strict=True):
        flags.DEFINE_integer(name, value, f"{help_text} ({end} end)",
                             flag_values=flag_values)
    elif hints[field.name] in _SCALARS:
      _SCALARS[hints[field.name]](field.name, default, help_text,
                                  flag_values=flag_values)
    else:
      flags.DEFINE_list(field.name, [str(v) for v in default], help_text,
                        flag_values=flag_values)


def parse_flags(argv: list[str], flag_values=flags.FLAGS) -> list[str]:
  """absl's flag parsing (for `app.run`), with a bad or unknown flag told
  in one line and exit status 2, like every other input error."""
  try:
    rest = flag_values(argv)
  except flags.Error as error:
    print(f"error: {error}; see --helpfull for the flags", file=sys.stderr)
    sys.exit(2)
  if len(rest) > 1:
    print(f"error: unexpected argument {rest[1]!r}: every setting is a flag "
          "(--name=value); see --helpfull for the flags", file=sys.stderr)
    sys.exit(2)
  return rest


def config_from_flags(
    preset: str, flag_values=flags.FLAGS, cls=LSTMConfig
) -> tuple[LSTMConfig, frozenset[str]]:
  """The preset's config with every explicitly given flag applied.

  Returns the config and the names of the fields set explicitly.
  """
  if preset not in PRESETS:
    raise ConfigError(
        f"--preset={preset!r} is unknown; choose one of {', '.join(PRESETS)}")
  base = cls(**PRESETS[preset])
  hints = typing.get_type_hints(cls)
  overrides = {}
  for field in dataclasses.fields(cls):
    names = field.metadata.get("flags") or (field.name,)
    given = [n for n in names if flag_values[n].present]
    if not given:
      continue
    if len(names) > 1:
      value = tuple(flag_values[n].value if n in given else old
                    for n, old in zip(names, getattr(base, field.name), strict=True))
    elif hints[field.name] in _SCALARS:
      value = flag_values[field.name].value
    else:
      value = _parse_list(field.name, flag_values[field.name].value,
                          typing.get_args(hints[field.name])[0])
    overrides[field.name] = value
  return make_config(preset, **overrides), frozenset(overrides)


def _parse_list(name: str, items: list[str], kind: type) -> tuple:
  try:
    return tuple(kind(item) for item in items)
  except ValueError:
    raise ConfigError(
        f"--{name}={','.join(items)}: every item must be a {kind.__name__} "
        "number, comma-separated") from None
