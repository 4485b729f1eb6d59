"""The errors the data layer raises: DataError, and one kind of it."""


class DataError(ValueError):
  """A file that cannot serve as a series; the message names file and fix."""


class ColumnError(DataError):
  """A column asked for that the file lacks: `name`, and the file's
  `columns`."""

  def __init__(self, message: str, name: str, columns: list[str]):
    super().__init__(message)
    self.name, self.columns = name, columns
