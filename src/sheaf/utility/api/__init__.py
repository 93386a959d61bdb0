"""The EnergyCAP dialect of the utility domain."""

from fastapi import APIRouter

from sheaf.utility.api import aggregation, bills, entry, imports, reference

router = APIRouter()
for module in (reference, entry, bills, imports, aggregation):
    router.include_router(module.router)
