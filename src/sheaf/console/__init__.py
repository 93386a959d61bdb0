"""The web console: a server-rendered, read-only view of sources and jobs."""

from sheaf.console.pages import router

__all__ = ["router"]
