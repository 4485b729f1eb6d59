"""Side-by-side speed measurements against PyTorch (not tests)."""
