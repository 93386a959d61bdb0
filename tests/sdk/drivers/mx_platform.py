"""Drive mx-platform-python 1.12.0 through the issue's compatibility list against a live
sheaf; print one JSON summary of what the SDK parsed. Run with the SDK venv's python:

    python mx_platform.py '{"base_url": ..., "client_id": ..., "api_key": ...}'

Only the standard library and the SDK: the test asserts on the printed summary.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import mx_platform_python as mx
from mx_platform_python.exceptions import ApiException, NotFoundException


def poll(members: Any, member: str, user: str) -> Any:
    deadline = time.monotonic() + 60
    while True:
        status = members.read_member_status(member, user).member
        if not status.is_being_aggregated or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def main() -> None:
    spec = json.loads(sys.argv[1])
    cfg = mx.Configuration(host=spec["base_url"], username=spec["client_id"],
                           password=spec["api_key"])
    client = mx.ApiClient(cfg)
    users, members = mx.UsersApi(client), mx.MembersApi(client)
    institutions, accounts = mx.InstitutionsApi(client), mx.AccountsApi(client)
    transactions, holdings = mx.TransactionsApi(client), mx.InvestmentHoldingsApi(client)
    out: dict[str, Any] = {}

    user = users.create_user(mx.UserCreateRequestBody(
        user=mx.UserCreateRequest(id="sdk-user", email="sdk@example.com"))).user
    out["user_guid"] = user.guid
    fields = institutions.list_institution_credentials("mxbank").credentials
    out["credential_fields"] = [f.field_name for f in fields]
    guid = {f.field_name: f.guid for f in fields}

    created = members.create_member_with_http_info(user.guid, mx.MemberCreateRequestBody(
        member=mx.MemberCreateRequest(institution_code="mxbank", credentials=[
            mx.CredentialRequest(guid=guid["username"], value="mxuser"),
            mx.CredentialRequest(guid=guid["password"], value="challenge")])))
    member = created.data.member.guid
    out["create_status"] = created.status_code
    status = poll(members, member, user.guid)
    out["challenged_status"] = status.connection_status
    challenges = members.list_member_challenges(member, user.guid).challenges
    out["challenge_types"] = [c.type for c in challenges]
    resumed = members.resume_aggregation_with_http_info(member, user.guid,
        mx.MemberResumeRequestBody(member=mx.MemberResumeRequest(challenges=[
            mx.CredentialRequest(guid=challenges[0].guid, value="correct")])))
    out["resume_status"] = resumed.status_code
    out["resume_parsed"] = resumed.data is not None
    status = poll(members, member, user.guid)
    out["resumed_status"] = status.connection_status
    out["status_flags"] = [status.is_authenticated, status.has_processed_accounts,
                           status.has_processed_transactions]

    # 'challenge' asks again on every run: change the password (which aggregates)
    updated = members.update_member_with_http_info(member, user.guid, mx.MemberUpdateRequestBody(
        member=mx.MemberUpdateRequest(credentials=[
            mx.CredentialRequest(guid=guid["password"], value="password")])))
    out["update_status"] = updated.status_code
    out["updated_connection_status"] = poll(members, member, user.guid).connection_status
    aggregated = members.aggregate_member_with_http_info(member, user.guid,
                                                         include_holdings=False)
    out["aggregate_status"] = aggregated.status_code
    out["aggregate_flag_type"] = type(aggregated.data.member.is_being_aggregated).__name__
    poll(members, member, user.guid)
    read = members.read_member(member, user.guid).member
    out["member"] = {"connection_status": read.connection_status,
                     "institution_code": read.institution_code,
                     "successfully_aggregated_at": read.successfully_aggregated_at,
                     "most_recent_job_guid": read.most_recent_job_guid}
    out["members_listed"] = len(members.list_members(user.guid).members)

    listed = accounts.list_member_accounts(user.guid, member)
    out["accounts"] = sorted(a.type for a in listed.accounts)
    out["account_balance_types"] = sorted({type(a.balance).__name__ for a in listed.accounts})
    txns = transactions.list_transactions_by_member(member, user.guid, from_date="2000-01-01",
                                                    records_per_page=1000)
    out["transactions_total"] = txns.pagination.total_entries
    out["transaction_statuses"] = sorted({t.status for t in txns.transactions})
    out["amount_types"] = sorted({type(t.amount).__name__ for t in txns.transactions})
    held = holdings.list_holdings_by_member(member, user.guid).investment_holdings
    out["holdings"] = len(held)
    out["quantity_types"] = sorted({type(h.quantity).__name__ for h in held})

    errors = {}
    try:
        members.read_member("MBR-nope", user.guid)
    except NotFoundException as exc:
        errors["unknown_member"] = exc.status
    try:
        members.resume_aggregation(member, user.guid, mx.MemberResumeRequestBody(
            member=mx.MemberResumeRequest(challenges=[
                mx.CredentialRequest(guid=challenges[0].guid, value="correct")])))
    except ApiException as exc:
        errors["resume_when_connected"] = exc.status
    out["errors"] = errors
    deleted = members.delete_member_with_http_info(member, user.guid)
    out["delete_status"] = deleted.status_code
    print(json.dumps(out))


if __name__ == "__main__":
    main()
