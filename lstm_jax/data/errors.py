"""The one error the data layer raises."""


class DataError(ValueError):
  """A file that cannot serve as a series; the message names file and fix."""
