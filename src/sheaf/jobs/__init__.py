"""The job core: persistent jobs, one transition function, leases, executors.

Imports no domain. Domains register handlers with ``job_handler`` and submit by type name.
"""

from sheaf.jobs.errors import JobCancelled, JobFailed
from sheaf.jobs.registry import JobOutcome, job_handler
from sheaf.jobs.states import JobStatus

__all__ = ["JobCancelled", "JobFailed", "JobOutcome", "JobStatus", "job_handler"]
