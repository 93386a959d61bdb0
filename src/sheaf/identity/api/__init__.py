"""The SailPoint Identity Security Cloud dialect of the identity domain."""

from fastapi import APIRouter

from sheaf.identity.api import accounts, load_accounts, sources, tasks

router = APIRouter()
for module in (sources, load_accounts, tasks, accounts):
    router.include_router(module.router)
