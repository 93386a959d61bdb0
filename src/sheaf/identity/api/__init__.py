"""The SailPoint Identity Security Cloud dialect of the identity domain."""

from fastapi import APIRouter

from sheaf.identity.api import accounts, load_accounts, sources, tasks

router = APIRouter()
# Routes are matched in order, one regular expression each: the task status that clients
# poll comes first (its paths overlap no other module's).
for module in (tasks, sources, load_accounts, accounts):
    router.include_router(module.router)
