"""Bulk bill import over HTTP: the CSV ``sheaf utility import-bills`` takes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, UploadFile
from starlette.concurrency import run_in_threadpool

from sheaf.auth.energycap import EnergyCapPrincipal
from sheaf.errors import PayloadTooLarge, Unauthorized
from sheaf.runtime import Runtime, get_runtime
from sheaf.utility.api.deps import bills_and_batches_create
from sheaf.utility.errors import FieldErrors

router = APIRouter(tags=["EnergyCAP bulk bill import"])


@router.post("/api/v202203/utilityPlatform/billImport")
async def import_bills(file: UploadFile = File(...), runtime: Runtime = Depends(get_runtime),
                       who: EnergyCapPrincipal = Depends(bills_and_batches_create)
                       ) -> dict[str, int]:
    """Import meter bills from a CSV (header ``place_code,commodity_code,account_code,
    meter_code,billing_period,begin_date,end_date,use,use_unit,cost``). All or nothing:
    a bad file answers 400 naming every bad line; otherwise the counts of what was
    created, replaced and left unchanged."""
    if who.topmost_place_id is not None:  # the import creates places under the root
        raise Unauthorized(f"User {who.user_code} sees only part of the place tree; the "
                           "bulk import needs a user whose topmost place is the root")
    from sheaf.utility import bill_import  # (polars: imported by the request that needs it)

    limit = runtime.settings.utility.max_import_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The file is larger than the {limit} bytes this server "
                              "accepts (SHEAF_UTILITY__MAX_IMPORT_BYTES)")
    try:
        result = await run_in_threadpool(bill_import.import_bills, runtime.db, data,
                                         who.user_id)
    except bill_import.ImportRefused as refused:
        raise FieldErrors([("file", p) for p in refused.problems], str(refused)) from None
    return result.counts()
