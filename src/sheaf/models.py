"""Every ORM model, so Alembic sees the whole schema."""

from sheaf.auth.energycap import EnergyCapKey, EnergyCapUser
from sheaf.auth.models import Credential
from sheaf.identity.models import Account, Identity, Source, SourceSchema
from sheaf.jobs.models import Job, JobEvent
from sheaf.kit.base import Base
from sheaf.utility import models as utility_models

__all__ = ["Account", "Base", "Credential", "EnergyCapKey", "EnergyCapUser", "Identity", "Job",
           "JobEvent", "Source", "SourceSchema", "utility_models"]
