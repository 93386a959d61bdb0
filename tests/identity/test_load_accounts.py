"""load-accounts end to end through HTTP: semantics, counters, wire shapes."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from sheaf.identity.api.accounts import ACCOUNT_SORTERS
from sheaf.identity.models import Account, Source
from sheaf.kit.filters import parse_sorters

HEADER = "id,name,email,department\n"
THREE = HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob,bob@x.org,Ops\na3,Cy,cy@x.org,HR\n"


def accounts(client: TestClient, auth: dict[str, str], source_id: str) -> dict[str, Any]:
    response = client.get("/v3/accounts", headers=auth,
                          params={"filters": f'sourceId eq "{source_id}"', "count": "true"})
    assert response.status_code == 200
    return {a["nativeIdentity"]: a for a in response.json()}


def test_first_load_creates_accounts(client, auth, make_source, load) -> None:
    source = make_source()
    task = load(source["id"], THREE)
    assert task["completionStatus"] == "SUCCESS"
    assert task["percentComplete"] == 100
    attrs = task["attributes"]
    assert (attrs["total"], attrs["created"], attrs["updated"], attrs["deleted"],
            attrs["optimized"]) == (3, 3, 0, 0, 0)
    stored = accounts(client, auth, source["id"])
    assert set(stored) == {"a1", "a2", "a3"}
    assert stored["a2"]["attributes"] == {"id": "a2", "name": "Bob", "email": "bob@x.org",
                                         "department": "Ops"}
    assert stored["a2"]["name"] == "Bob"
    assert stored["a2"]["sourceName"] == "HR"


def test_snapshot_semantics_update_remove_unchanged(client, auth, make_source, load) -> None:
    source = make_source()
    load(source["id"], THREE)
    before = accounts(client, auth, source["id"])
    task = load(source["id"], HEADER + "a1,Ann,ann@x.org,Eng\na2,Bob,bob@x.org,Sales\n"
                "a4,Di,di@x.org,Eng\n")
    a = task["attributes"]
    assert (a["total"], a["optimized"], a["created"], a["updated"], a["deleted"]) == (3, 1, 1, 1, 1)
    after = accounts(client, auth, source["id"])
    assert set(after) == {"a1", "a2", "a4"}
    assert after["a2"]["attributes"]["department"] == "Sales"
    # an unchanged account is not rewritten
    assert after["a1"]["modified"] == before["a1"]["modified"]
    assert after["a1"]["id"] == before["a1"]["id"]


def test_disable_optimization_reports_no_optimized(make_source, load) -> None:
    source = make_source()
    load(source["id"], THREE)
    task = load(source["id"], THREE, disable=True)
    assert task["attributes"]["optimizedAggregation"] == "disabled"
    assert task["attributes"]["optimized"] == 0
    assert task["attributes"]["updated"] == 0


def test_repeated_rows_merge_into_multi_valued(client, auth, make_source, load) -> None:
    source = make_source()
    schema = client.get(f"/v3/sources/{source['id']}/schemas", headers=auth).json()[0]
    body = {"name": "account", "identityAttribute": "id", "displayAttribute": "name",
            "attributes": [{"name": "id"}, {"name": "name"},
                           {"name": "groups", "isMulti": True}]}
    r = client.put(f"/v3/sources/{source['id']}/schemas/{schema['id']}", json=body, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["attributes"][2]["isMulti"] is True
    task = load(source["id"], "id,name,groups\nu1,U,vpn\nu1,U,git\nu1,U,vpn\nu2,V,\n")
    assert task["attributes"]["total"] == 2
    stored = accounts(client, auth, source["id"])
    assert stored["u1"]["attributes"]["groups"] == ["vpn", "git"]
    assert stored["u2"]["attributes"]["groups"] == []


def test_delete_threshold_blocks_mass_removal(client, auth, make_source, load) -> None:
    source = make_source(deleteThreshold=10)
    rows = "".join(f"u{i},User {i},u{i}@x.org,Eng\n" for i in range(20))
    load(source["id"], HEADER + rows)
    task = load(source["id"], HEADER + rows.splitlines(keepends=True)[0])  # 19 of 20 missing
    assert task["completionStatus"] == "WARNING"
    assert task["attributes"]["deleted"] == 0
    assert "delete threshold" in task["messages"][0]["localizedText"]["message"]
    assert task["messages"][0]["type"] == "WARN"
    assert len(accounts(client, auth, source["id"])) == 20


def test_authoritative_source_creates_and_correlates_identities(
    client, auth, make_source, load
) -> None:
    pairs = [{"accountAttribute": "email", "identityAttribute": "email"}]
    hr = make_source("HR", authoritative=True, connectorAttributes={"correlation": pairs})
    badges = make_source("Badges", connectorAttributes={"correlation": pairs})
    task = load(hr["id"], THREE)
    assert task["attributes"]["identitiesCreated"] == 3
    task = load(badges["id"], "id,name,email\nb1,Ann,ann@x.org\nb2,Zed,zed@x.org\n")
    assert task["attributes"]["identitiesCorrelated"] == 1
    assert task["attributes"]["identitiesCreated"] == 0
    hr_acc = accounts(client, auth, hr["id"])
    badge_acc = accounts(client, auth, badges["id"])
    assert badge_acc["b1"]["identityId"] == hr_acc["a1"]["identityId"]
    assert badge_acc["b2"]["uncorrelated"] is True
    ident = client.get(f"/v2025/identities/{hr_acc['a1']['identityId']}", headers=auth)
    assert ident.status_code == 200
    assert ident.json()["attributes"]["email"] == "ann@x.org"
    listed = client.get("/v2025/identities", headers=auth, params={"count": "true"})
    assert listed.headers["X-Total-Count"] == "3"
    ids = [i["id"] for i in listed.json()]  # by id (the primary key's order) by default
    assert ids == sorted(ids)
    by_name = client.get("/v2025/identities", headers=auth, params={"sorters": "-name"})
    assert [i["name"] for i in by_name.json()] == sorted(
        [i["name"] for i in listed.json()], reverse=True)


def test_every_load_accounts_path_answers_202(make_source, load) -> None:
    source = make_source()
    paths = ["/beta/sources/{id}/load-accounts", "/v2024/sources/{id}/load-accounts",
             "/v2026/sources/{id}/load-accounts", "/sources/v1/{id}/load-accounts",
             "/cc/api/source/loadAccounts/{id}"]
    for path in paths:
        assert load(source["id"], THREE, path=path)["completionStatus"] == "SUCCESS"


def test_load_accounts_task_wire_types(client, auth, make_source, runtime) -> None:
    source = make_source()
    runtime.executor.paused = True  # the job stays queued, as right after the request
    r = client.post(f"/beta/sources/{source['id']}/load-accounts", headers=auth,
                    files={"file": ("x.csv", THREE.encode(), "text/csv")})
    assert r.status_code == 202
    body = r.json()
    assert body["success"] is True
    task = body["task"]
    assert isinstance(task["id"], str) and len(task["id"]) == 32
    assert task["type"] == "QUARTZ"
    assert task["attributes"]["optimizedAggregation"] == "enabled"
    assert task["completionStatus"] is None and task["completed"] is None
    assert task["created"].endswith("Z")
    assert all(set(r) == {"displayLabel", "attributeName"} for r in task["returns"])


def test_second_load_while_running_ends_in_error(client, auth, make_source, runtime) -> None:
    source = make_source()
    runtime.executor.paused = True
    first = client.post(f"/v2025/sources/{source['id']}/load-accounts", headers=auth,
                        files={"file": ("a.csv", THREE.encode())}).json()["task"]
    second = client.post(f"/v2025/sources/{source['id']}/load-accounts", headers=auth,
                         files={"file": ("a.csv", THREE.encode())})
    assert second.status_code == 202
    refused = second.json()
    assert refused["task"]["completionStatus"] == "ERROR"
    assert "currently running aggregation must complete" in (
        refused["task"]["messages"][0]["localizedText"])
    runtime.executor.drain()
    done = client.get(f"/v2025/task-status/{first['id']}", headers=auth).json()
    assert done["completionStatus"] == "SUCCESS"
    assert done["attributes"]["created"] == 3


def _status_list(client: TestClient, auth: dict[str, str], **params: str) -> Any:
    return client.get("/task-status/v1", headers=auth, params=params)


def test_task_status_list_filters_and_paging(client, auth, make_source, load, runtime) -> None:
    a, b = make_source("A"), make_source("B")
    t1 = load(a["id"], THREE)
    t2 = load(b["id"], THREE)
    runtime.executor.paused = True
    pending = client.post(f"/v2025/sources/{a['id']}/load-accounts", headers=auth,
                          files={"file": ("a.csv", THREE.encode())}).json()["task"]
    r = _status_list(client, auth, filters=f'sourceId eq "{a["id"]}"', count="true")
    assert r.headers["X-Total-Count"] == "2"
    assert {t["id"] for t in r.json()} == {t1["id"], pending["id"]}
    r = _status_list(client, auth, filters="completionStatus isnull")
    assert [t["id"] for t in r.json()] == [pending["id"]]
    r = _status_list(client, auth, filters=f'id in ("{t1["id"]}","{t2["id"]}")',
                     sorters="-created")
    assert [t["id"] for t in r.json()] == [t2["id"], t1["id"]]
    r = _status_list(client, auth, filters='type eq "CLOUD_ACCOUNT_AGGREGATION"', limit="1",
                     offset="1", sorters="created")
    assert [t["id"] for t in r.json()] == [t2["id"]]
    r = _status_list(client, auth, filters='type eq "QUARTZ"')
    assert r.status_code == 400
    assert "QUARTZ" in r.json()["messages"][0]["text"]
    r = _status_list(client, auth, filters='completionStatus eq "SUCCESS" and sourceId eq "x"')
    assert r.json() == []


def test_patch_clears_a_stuck_task(client, auth, make_source, runtime) -> None:
    source = make_source()
    runtime.executor.paused = True
    task = client.post(f"/v2025/sources/{source['id']}/load-accounts", headers=auth,
                       files={"file": ("a.csv", THREE.encode())}).json()["task"]
    ops = [{"op": "replace", "path": "/completionStatus", "value": "Error"},
           {"op": "replace", "path": "/completed", "value": "2024-05-17T19:33:16.470Z"}]
    r = client.patch(f"/task-status/v1/{task['id']}", json=ops, headers={
        **auth, "Content-Type": "application/json-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["completionStatus"] == "ERROR"
    # the lock is released: a new load runs
    runtime.executor.pending.clear()
    runtime.executor.paused = False
    again = client.post(f"/v2025/sources/{source['id']}/load-accounts", headers=auth,
                        files={"file": ("a.csv", THREE.encode())}).json()
    assert again["success"] is True
    r = client.patch(f"/task-status/v1/{task['id']}", json=ops, headers=auth)
    assert r.status_code == 400  # already completed


def test_account_aggregation_status(client, auth, make_source, load) -> None:
    source = make_source()
    task = load(source["id"], THREE)
    r = client.get(f"/account-aggregations/v1/{task['id']}/status", headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "COMPLETED"
    assert body["totalAccounts"] == 3 and body["processedAccounts"] == 3
    assert client.get("/v2025/account-aggregations/nope/status", headers=auth).status_code == 404


def test_source_cannot_be_deleted_while_aggregating(client, auth, make_source, runtime) -> None:
    source = make_source()
    runtime.executor.paused = True
    client.post(f"/v2025/sources/{source['id']}/load-accounts", headers=auth,
                files={"file": ("a.csv", THREE.encode())})
    r = client.delete(f"/v3/sources/{source['id']}", headers=auth)
    assert r.status_code == 409 and "aggregating" in r.json()["messages"][0]["text"]
    runtime.executor.drain()
    assert client.delete(f"/v3/sources/{source['id']}", headers=auth).status_code == 202
    assert client.get(f"/v3/sources/{source['id']}", headers=auth).status_code == 404
    listed = client.get("/v3/accounts", headers=auth,
                        params={"filters": f'sourceId eq "{source["id"]}"'})
    assert listed.json() == []


def test_source_settings_change_with_patch_and_put(client, auth, make_source, load) -> None:
    source = make_source(deleteThreshold=10)
    url = f"/v3/sources/{source['id']}"
    ops = [{"op": "replace", "path": "/deleteThreshold", "value": 50},
           {"op": "add", "path": "/connectorAttributes/correlation",
            "value": [{"accountAttribute": "email", "identityAttribute": "email"}]}]
    r = client.patch(url, json=ops, headers={**auth, "Content-Type": "application/json-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["deleteThreshold"] == 50
    assert r.json()["connectorAttributes"]["correlation"][0]["accountAttribute"] == "email"
    assert client.get(url, headers=auth).json()["deleteThreshold"] == 50
    for bad in ([{"op": "replace", "path": "/deleteThreshold", "value": 101}],
                [{"op": "replace", "path": "/connector", "value": "jdbc"}],
                [{"op": "remove", "path": "/nope"}], {"not": "a patch"}):
        r = client.patch(url, json=bad, headers=auth)
        assert r.status_code == 400, (bad, r.text)
    assert client.get(url, headers=auth).json()["deleteThreshold"] == 50  # unchanged
    body = {"name": "HR2", "connector": "delimited-file", "deleteThreshold": 5,
            "authoritative": True}
    r = client.put(url, json=body, headers=auth)
    assert r.status_code == 200 and r.json()["name"] == "HR2" and r.json()["authoritative"]
    make_source("Other")
    r = client.put(url, json={**body, "name": "Other"}, headers=auth)
    assert r.status_code == 409


def test_each_run_logs_where_its_time_went(make_source, load, caplog) -> None:
    source = make_source()
    with caplog.at_level("INFO", logger="sheaf.identity.aggregation"):
        load(source["id"], THREE)
    lines = [r.getMessage() for r in caplog.records if "aggregated in" in r.getMessage()]
    assert len(lines) == 1 and source["id"] in lines[0]
    for stage in ("parse", "load copy", "diff", "correlate", "plan", "write"):
        assert f"{stage} " in lines[0]


def test_account_pages_follow_the_source_index_and_page_stably(
    client, auth, make_source, load, runtime
) -> None:
    big, small = make_source("Big"), make_source("Small")
    # names repeat, so a sort by name alone would tie; ids are loaded out of order
    load(big["id"], HEADER + "".join(f"b{i:03},Same{i % 3},b{i}@x.org,Eng\n"
                                     for i in reversed(range(120))))
    load(small["id"], HEADER + "s1,Same0,s1@x.org,Eng\n")

    def pages(**params: str) -> list[tuple[str, str]]:
        seen = []
        for offset in range(0, 200, 25):
            r = client.get("/v3/accounts", headers=auth,
                           params={"limit": "25", "offset": str(offset), **params})
            assert r.status_code == 200, r.text
            seen += [(a["sourceId"], a["nativeIdentity"]) for a in r.json()]
        return seen

    default = pages()
    assert default == sorted(default) and len(default) == 121  # by source, then account id
    by_name = pages(sorters="name")
    assert sorted(by_name) == sorted(default)  # every account once, despite the ties
    # (SQLite happens to break ties alike on every page; other databases need telling)
    order = parse_sorters("-name", ACCOUNT_SORTERS, [Source.id, Account.native_identity])
    assert [str(o) for o in order] == [
        "account.name DESC", str(Source.id), str(Account.native_identity)]
    # one account by its id alone, without scanning the table (SQLite: a skip-scan of the
    # (source_id, native_identity) index, once the aggregation has refreshed statistics)
    found = client.get("/v3/accounts", headers=auth, params={"filters": 'nativeIdentity eq "b042"'})
    assert [a["nativeIdentity"] for a in found.json()] == ["b042"]
    if runtime.db.is_sqlite:
        with runtime.db.read() as session:
            plan = session.execute(text(
                "EXPLAIN QUERY PLAN SELECT id FROM account WHERE native_identity = 'b042'"
            )).all()
        assert "USING INDEX" in str(plan), plan


def test_new_accounts_get_ids_in_account_id_order_and_are_inserted_so(
        client, auth, make_source, load, runtime) -> None:
    """Ids are time-ordered and given in account-id order, so the insert appends to the
    primary key and the (source, account id) index: insertion order = id order =
    account-id order, even for a file that is not sorted."""
    source = make_source(authoritative=True)
    rows = [f"k{n:03d},N{n},n{n}@x.org,Eng\n" for n in (7, 3, 11, 1, 5, 9, 2)]
    load(source["id"], HEADER + "".join(rows))
    load(source["id"], HEADER + "".join(rows) + "k000,Z,z@x.org,Ops\nk999,Y,y@x.org,Ops\n")
    with runtime.db.read() as session:
        by_id = session.execute(text(
            "SELECT native_identity FROM account ORDER BY id")).scalars().all()
        assert by_id == sorted(by_id[:7]) + sorted(by_id[7:])  # each load in key order
        assert by_id[7:] == ["k000", "k999"]  # the second load's ids follow the first's
        if runtime.db.is_sqlite:  # (rowid: the order rows were inserted in)
            inserted = session.execute(text(
                "SELECT id FROM account ORDER BY rowid")).scalars().all()
            assert inserted == sorted(inserted)
            identities = session.execute(text(
                "SELECT id FROM identity ORDER BY rowid")).scalars().all()
            assert identities == sorted(identities)
