"""Every ORM model, so Alembic sees the whole schema."""

from sheaf.auth.models import Credential
from sheaf.identity.models import Account, Identity, Source, SourceSchema
from sheaf.jobs.models import Job, JobEvent
from sheaf.kit.base import Base

__all__ = ["Account", "Base", "Credential", "Identity", "Job", "JobEvent", "Source",
           "SourceSchema"]
