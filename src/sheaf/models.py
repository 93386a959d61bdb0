"""Every ORM model, so Alembic sees the whole schema."""

from sheaf.auth.models import Credential
from sheaf.auth.mx import MxClient, NexusApiToken, NexusSession
from sheaf.finance.models import (
    Challenge,
    FinAccount,
    FinHolding,
    FinTransaction,
    FinUser,
    Institution,
    Member,
)
from sheaf.identity.models import Account, Identity, Source, SourceSchema
from sheaf.jobs.models import Job, JobEvent
from sheaf.kit.base import Base

__all__ = ["Account", "Base", "Challenge", "Credential", "FinAccount", "FinHolding",
           "FinTransaction", "FinUser", "Identity", "Institution", "Job", "JobEvent", "Member",
           "MxClient", "NexusApiToken", "NexusSession", "Source", "SourceSchema"]
