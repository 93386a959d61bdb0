"""One Settings object, read from SHEAF_* environment variables (nested with __)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sheaf.kit.files import private_dir, write_private_text


class JobSettings(BaseModel):
    # local: workers beside the API; dramatiq: ids go through Redis to `sheaf worker`s
    executor: Literal["local", "inline", "dramatiq"] = "local"
    broker_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "sheaf-jobs"
    # local executor: run jobs in worker processes (default) or threads of the API process
    isolation: Literal["process", "thread"] = "process"
    workers: int = Field(default=2, ge=1, le=64)
    # local worker processes run at this much lower CPU priority (nice), so a long job
    # shares the cores with the API processes beside it instead of slowing every answer
    worker_nice: int = Field(default=10, ge=0, le=19)
    lease_seconds: float = Field(default=120.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    reaper_interval_seconds: float = Field(default=15.0, gt=0)
    progress_interval_seconds: float = Field(default=0.5, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    # local executor, on shutdown: how long running jobs may take to finish before their
    # workers are stopped and the jobs handed back to the queue (nothing is half-applied)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)


class AuthSettings(BaseModel):
    # HS256 signing key; generated into the data dir on first start when not given.
    jwt_secret: str | None = None
    token_ttl_seconds: int = Field(default=749, gt=0)
    # SailPoint's gateway default: 100 requests per 10 s per client and API version.
    rate_limit_requests: int = Field(default=100, ge=0)
    rate_limit_window_seconds: float = Field(default=10.0, gt=0)
    # where the budget is kept: "process" (each API process its own), "redis" (shared
    # through jobs.broker_url by every server), "auto" (redis with the dramatiq executor)
    rate_limit_store: Literal["auto", "process", "redis"] = "auto"
    # prefix of the limits' keys in Redis (deployments or test runs sharing one Redis)
    redis_key_prefix: str = "sheaf:"
    # Failed sign-ins (POST /oauth/token, the console) allowed within the window per client
    # id and per caller address; past either, sign-ins are refused with 429 until the
    # window has passed (0: no limit). Kept where the rate limit is kept.
    sign_in_failures_per_client: int = Field(default=10, ge=0)
    sign_in_failures_per_address: int = Field(default=30, ge=0)
    sign_in_failure_window_seconds: float = Field(default=60.0, gt=0)


class IdentitySettings(BaseModel):
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    max_field_bytes: int = Field(default=64 * 1024, gt=0)
    # A source with this many accounts or fewer ignores its delete threshold, so a tiny
    # source can still be emptied on purpose.
    delete_threshold_min_accounts: int = Field(default=10, ge=0)


class FinanceSettings(BaseModel):
    # MX refuses a new standard aggregation this soon after a successful one (202, no
    # job); sandbox institutions ignore it, as MX Bank does.
    min_interval_seconds: float = Field(default=3 * 3600, ge=0)
    # A challenge left unanswered this long ends the member EXPIRED.
    challenge_timeout_seconds: float = Field(default=600, gt=0)
    # Nexus: a one-time API token, then a session that lasts this long from its last use.
    api_token_ttl_seconds: float = Field(default=600, gt=0)
    session_ttl_seconds: float = Field(default=1800, gt=0)
    # largest OFX / QFX statement file accepted for upload
    max_statement_bytes: int = Field(default=16 * 1024 * 1024, gt=0)


class UtilitySettings(BaseModel):
    # how many billing periods an aggregation covers, ending with its billingPeriod
    # (EnergyCAP: "determined by system configuration"; a look-back re-aggregates late or
    # corrected source bills)
    aggregation_periods: int = Field(default=3, ge=1, le=120)
    # an aggregate bill whose use or cost differs from the prior period's by more than
    # this percentage is flagged by the audits
    audit_variance_percent: int = Field(default=50, ge=1)
    # bulk bill import: larger files get 413
    max_import_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHEAF_", env_nested_delimiter="__")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    tenant: str = "sheaf"
    jobs: JobSettings = JobSettings()
    auth: AuthSettings = AuthSettings()
    identity: IdentitySettings = IdentitySettings()
    finance: FinanceSettings = FinanceSettings()
    utility: UtilitySettings = UtilitySettings()

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Resolved once, here: a relative SHEAF_DATA_DIR must not name another directory
        # (and so silently another database) when a later step runs from elsewhere.
        return value.expanduser().resolve()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sheaf.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @cached_property
    def signing_key(self) -> str:
        if self.auth.jwt_secret:
            return self.auth.jwt_secret
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            private_dir(self.data_dir)
            write_private_text(path, secrets.token_hex(32))
        return path.read_text().strip()
