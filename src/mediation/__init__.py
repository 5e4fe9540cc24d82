"""One-stop dispute mediation center service."""

__version__ = "0.1.0"
