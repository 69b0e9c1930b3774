"""selfalign: constitutional self-critique data generation."""

__version__ = "0.1.0"
