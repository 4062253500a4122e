"""The slice of the Salesforce REST API the connector uses, on top of the core's VendorClient.

Nothing here sleeps, retries or refreshes: the client does. What lives here is Salesforce's shape:
the versioned path, query paging through ``nextRecordsUrl``, Composite (25 queries in one call),
sObject Collections (200 records per call) and a short-lived describe cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from leadbridge.connection_view import ConnectionView
from leadbridge.errors import TransientError
from leadbridge.http import VendorClient
from leadbridge.toolkit.paging import NextUrl, PageRead, read_from, read_page, records_at

from .errors import from_answer
from .hosts import checked_instance_url
from .info import DEFAULT_API_VERSION

#: A query answer's rows, and the next page's host-relative URL until ``done``.
QUERY_PAGES = NextUrl(
    records_at("records"), lambda body: None if body.get("done", True) else body.get("nextRecordsUrl")
)
COLLECTION_SIZE = 200  # sObject Collections' hard limit per call
COMPOSITE_SIZE = 25  # sub-requests per Composite call (one API call)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SalesforceApi:
    """One connection's data API: ``{instance_url}/services/data/v{version}/``."""

    def __init__(self, connection: ConnectionView, client: VendorClient) -> None:
        self.connection = connection
        self.client = client
        creds = connection.credentials
        if client.auth is not None:
            client.auth.headers()  # logs in when there is no session yet (the core does the work)
            creds = client.auth.credentials
        extra = creds.extra if creds is not None else {}
        if extra.get("instance_url"):
            # The token answer names the data host; it was checked when it arrived and again here.
            client.base_url = checked_instance_url(connection, extra["instance_url"]) + "/"
        configured = str(connection.setting("api_version", DEFAULT_API_VERSION))
        negotiated = str(extra.get("api_version") or configured)
        # Negotiated at login; an admin who lowers the setting afterwards is obeyed at once.
        self.version = min(configured, negotiated, key=float)
        self.prefix = f"services/data/v{self.version}/"

    # -- reads ---------------------------------------------------------------------------------

    def query(self, soql: str, *, include_deleted: bool = False) -> dict[str, Any]:
        """The first page of a query (``queryAll`` sees deleted rows too)."""
        resource = "queryAll" if include_deleted else "query"
        return self._json(self.client.get(self.prefix + resource, params={"q": soql}))

    def query_page(self, soql: str | None, cursor: str | None, *, include_deleted: bool = False) -> PageRead:
        """One page of a query; ``cursor`` (``None`` first) follows ``nextRecordsUrl``."""
        resource = "queryAll" if include_deleted else "query"
        return read_page(self.client, QUERY_PAGES, self.prefix + resource, {"q": soql}, cursor)

    def query_many(self, statements: Sequence[str]) -> list[list[dict[str, Any]]]:
        """Run many small queries, 25 per Composite call (one API call each); rows per statement.

        Used for lookups (``Email IN (...)`` chunks), where a GET per chunk would burn the daily
        allocation. A sub-query with more than one page is finished with ``nextRecordsUrl``.
        """
        results: list[list[dict[str, Any]]] = []
        for batch in chunks(list(statements), COMPOSITE_SIZE):
            body = {
                "allOrNone": False,
                "compositeRequest": [
                    {"method": "GET", "referenceId": f"q{i}", "url": f"/{self.prefix}query?q={quote(q)}"}
                    for i, q in enumerate(batch)
                ],
            }
            answer = self._json(self.client.post(self.prefix + "composite", json=body, idempotent=True))
            for sub in answer.get("compositeResponse", []):
                status = int(sub.get("httpStatusCode", 500))
                payload = sub.get("body")
                if status >= 400:
                    raise from_answer(status, payload) or TransientError(f"lookup query failed: {status}")
                rows = QUERY_PAGES.records(payload)
                following = QUERY_PAGES.next_url(payload)
                if following:
                    rows.extend(read_from(self.client, QUERY_PAGES, following))
                results.append(rows)
        return results

    def describe(self, sobject: str, *, fresh: bool = False) -> dict[str, Any]:
        """``/sobjects/{T}/describe``, read once per client unless ``fresh`` (the mapping screen)."""
        # Kept for the life of the client (one run, one panel request): the next run sees fields
        # the admin added meanwhile.
        cached = self.client.run_cache("describe")
        key = (self.client.base_url + self.version, sobject)
        if not fresh and key in cached:
            return cached[key]  # type: ignore[no-any-return]
        data = self._json(self.client.get(f"{self.prefix}sobjects/{sobject}/describe"))
        cached[key] = data
        return data

    # -- writes --------------------------------------------------------------------------------

    def create(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``POST /composite/sobjects``; not retried (a repeat would create twice)."""
        body = {"allOrNone": False, "records": list(records)}
        return self._list(self.client.post(self.prefix + "composite/sobjects", json=body))

    def update(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``PATCH /composite/sobjects`` by ``Id``; safe to repeat."""
        body = {"allOrNone": False, "records": list(records)}
        return self._list(self.client.patch(self.prefix + "composite/sobjects", json=body, idempotent=True))

    def upsert(
        self, sobject: str, external_field: str, records: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """``PATCH /composite/sobjects/{T}/{externalIdField}``; results carry ``created``."""
        body = {"allOrNone": False, "records": list(records)}
        path = f"{self.prefix}composite/sobjects/{sobject}/{external_field}"
        return self._list(self.client.patch(path, json=body, idempotent=True))

    def delete(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        params = {"ids": ",".join(ids), "allOrNone": "false"}
        return self._list(self.client.delete(self.prefix + "composite/sobjects", params=params))

    def create_one(self, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        return self._json(self.client.post(f"{self.prefix}sobjects/{sobject}", json=record))

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise TransientError("Salesforce answered with something that is not JSON") from None
        if isinstance(data, dict):
            return data
        return {"items": data}

    @staticmethod
    def _list(response: Any) -> list[dict[str, Any]]:
        try:
            data = response.json()
        except ValueError:
            raise TransientError("Salesforce answered with something that is not JSON") from None
        if not isinstance(data, list):
            raise TransientError("Salesforce answered a collection call without a result list")
        return data
