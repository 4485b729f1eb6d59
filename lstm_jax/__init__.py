"""lstm_jax: tune, train and evaluate LSTM forecasters on long series."""

__version__ = "0.1.0"
