"""moleport: melanoma classifier training, mobile export and parity."""
__version__ = "0.1.0"
