"""Command-line drivers of lstm_jax (absl flags)."""
