"""sheaf: a self-hosted aggregation server."""

__version__ = "0.1.0"
