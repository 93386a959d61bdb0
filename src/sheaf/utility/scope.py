"""What a user may see: the subtree of their topmost place (EnergyCAP's "topmost place").

Places in the subtree, the meters at them, the accounts with such a meter, those accounts'
bills and flags, the aggregate versions on such meters; batches and chargeback tasks are
their own. A user whose topmost place is unset (or the root) sees everything. Something
out of reach answers 404, as if it did not exist; creating under it is a bad field.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, exists, select, true
from sqlalchemy.orm import Session

from sheaf.auth.energycap import EnergyCapPrincipal
from sheaf.errors import NotFound
from sheaf.utility import models as m


def everything(who: EnergyCapPrincipal) -> bool:
    return who.topmost_place_id is None


def subtree(place_id: int) -> Select[Any]:
    """The ids of ``place_id`` and every place under it (a recursive query)."""
    tree = select(m.Place.place_id).where(m.Place.place_id == place_id).cte(
        "place_tree", recursive=True)
    tree = tree.union_all(select(m.Place.place_id).where(m.Place.parent_id == tree.c.place_id))
    return select(tree.c.place_id)


def places(who: EnergyCapPrincipal) -> ColumnElement[bool]:
    if who.topmost_place_id is None:
        return true()
    return m.Place.place_id.in_(subtree(who.topmost_place_id))


def meters(who: EnergyCapPrincipal) -> ColumnElement[bool]:
    if who.topmost_place_id is None:
        return true()
    return m.Meter.place_id.in_(subtree(who.topmost_place_id))


def accounts(who: EnergyCapPrincipal, account: Any = None) -> ColumnElement[bool]:
    if who.topmost_place_id is None:
        return true()
    column = m.Account.account_id if account is None else account
    # an account with a meter in reach; one with no meter yet, its creator's
    linked = exists().where(
        m.AccountMeter.account_id == column, m.AccountMeter.meter_id == m.Meter.meter_id,
        m.Meter.place_id.in_(subtree(who.topmost_place_id)))
    unlinked_own = column.in_(
        select(m.Account.account_id).where(
            m.Account.created_by == who.user_id,
            ~exists().where(m.AccountMeter.account_id == m.Account.account_id)))
    return linked | unlinked_own


def bills(who: EnergyCapPrincipal) -> ColumnElement[bool]:
    return accounts(who, m.Bill.account_id)


def own(who: EnergyCapPrincipal, user_column: Any) -> ColumnElement[bool]:
    """Batches and tasks: a scoped user's own."""
    return true() if everything(who) else user_column == who.user_id


def visible(session: Session, who: EnergyCapPrincipal, model: type[Any], ident: int,
            what: str) -> Any:
    """The row, if it exists and ``who`` may see it; else 404."""
    key = {m.Place: (m.Place.place_id, places), m.Meter: (m.Meter.meter_id, meters),
           m.Account: (m.Account.account_id, accounts), m.Bill: (m.Bill.bill_id, bills),
           m.Batch: (m.Batch.batch_id, lambda w: own(w, m.Batch.user_id)),
           m.ChargebackTask: (m.ChargebackTask.task_id,
                              lambda w: own(w, m.ChargebackTask.user_id))}
    column, condition = key[model]
    row = session.execute(select(model).where(column == ident, condition(who))
                          ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{what} {ident} was not found")
    return row


def can_see(session: Session, who: EnergyCapPrincipal, model: type[Any], ident: int) -> bool:
    try:
        visible(session, who, model, ident, "")
    except NotFound:
        return False
    return True
