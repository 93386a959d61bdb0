"""Who is calling (``ECI-ApiKey``), may they, and EnergyCAP's paging."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from sheaf.auth.deps import spend
from sheaf.auth.energycap import EnergyCapPrincipal, verify_key
from sheaf.errors import Unauthorized
from sheaf.runtime import Runtime, get_runtime

MAX_PAGE_SIZE = 1000
# a path id: EnergyCAP's ids are 32-bit integers (a larger one is a 400, not an overflow)
IdPath = Annotated[int, Path(ge=-(2**31), le=2**31 - 1)]


def _verify(runtime: Runtime, api_key: str) -> EnergyCapPrincipal | None:
    with runtime.db.read() as session:
        return verify_key(session, api_key)


async def caller(request: Request, runtime: Runtime = Depends(get_runtime)
                 ) -> EnergyCapPrincipal:
    key = request.headers.get("eci-apikey", "").strip()
    if not key:
        raise Unauthorized("No API key: send it in the ECI-ApiKey header")
    who = await run_in_threadpool(_verify, runtime, key)
    if who is None:
        raise Unauthorized("The ECI-ApiKey is not valid")
    # Each key has its own budget, as each SailPoint client and MX client id has.
    await spend(runtime, f"key:{who.key_id}", "energycap")
    return who


def permission(*needed: str) -> Callable[..., Awaitable[EnergyCapPrincipal]]:
    """The caller, if their user holds every permission in ``needed`` (else 401, as
    EnergyCAP answers a missing permission)."""

    async def check(who: EnergyCapPrincipal = Depends(caller)) -> EnergyCapPrincipal:
        missing = [p for p in needed if p not in who.permissions]
        if missing:
            raise Unauthorized(
                f"User {who.user_code} lacks the permission "
                f"{', '.join(p.replace(':', ' (') + ')' for p in missing)} this needs")
        return who

    return check


class Paging:
    def __init__(self, page_number: int = Query(1, alias="pageNumber", ge=1, le=10**9),
                 page_size: int = Query(250, alias="pageSize", ge=1, le=10**9)) -> None:
        self.number = page_number
        self.size = min(page_size, MAX_PAGE_SIZE)  # larger sizes are capped, not refused

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def headers(self, response: Response, total: int) -> None:
        response.headers["PageNumber"] = str(self.number)
        response.headers["PageSize"] = str(self.size)
        response.headers["TotalNumberOfRecords"] = str(total)
        response.headers["TotalPages"] = str(max(1, math.ceil(total / self.size)))

    def rows(self, session: Any, response: Response, model: Any, key: Any,
             conditions: list[Any]) -> list[Any]:
        """This page of ``model`` rows matching ``conditions`` in ``key`` order; the
        paging headers say where it stands among all of them."""
        total = session.execute(select(func.count()).select_from(model)
                                .where(*conditions)).scalar_one()
        self.headers(response, total)
        return list(session.execute(select(model).where(*conditions).order_by(key)
                                    .limit(self.size).offset(self.offset)).scalars())


# One dependency per permission an endpoint needs.
accounts_create = permission("Accounts:Create")
accounts_edit = permission("Accounts:Edit")
accounts_view = permission("Accounts:View")
bills_and_batches_create = permission("BillsAndBatches:Create")
bills_and_batches_manage = permission("BillsAndBatches:Manage")
bills_and_batches_view = permission("BillsAndBatches:View")
chargeback_reversals_manage = permission("ChargebackReversals:Manage")
chargebacks_manage = permission("Chargebacks:Manage")
chargebacks_run = permission("Chargebacks:Run")
chargebacks_module_view = permission("ChargebacksModule:View")
meters_create = permission("Meters:Create")
meters_view = permission("Meters:View")
places_create = permission("Places:Create")
places_view = permission("Places:View")
