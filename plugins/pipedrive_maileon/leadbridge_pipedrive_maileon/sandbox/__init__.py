"""One loopback sandbox for both vendors of the Pipedrive → Maileon connector.

The core's base-URL override sends every request of a connection (both endpoints) to one origin
with the path kept, so one server answers Pipedrive's paths (``/api/v2/...``, ``/v1/...``,
``/api/v1/...``) and Maileon's (``/1.0/...``). Each vendor lives in its own module and keeps its
own state, auth, errors and limits: :class:`~.pipedrive.PipedriveAPI`, :class:`~.maileon.MaileonAPI`.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from leadbridge.sandbox import Sandbox

from .maileon import MaileonAPI
from .pipedrive import PipedriveAPI

MAILEON_PREFIX = "/1.0"


class PipedriveMaileonSandbox(Sandbox):
    name = "pipedrive_maileon"

    pipedrive: PipedriveAPI
    maileon: MaileonAPI

    def setup_routes(self) -> None:
        self.pipedrive = PipedriveAPI(self)
        self.maileon = MaileonAPI(self)

    def error_response(self, status: int, code: str, message: str) -> Response:
        if request.path.startswith(MAILEON_PREFIX):
            return self.maileon.error_response(status, message)
        return self.pipedrive.error_response(status, message)

    def rate_limit_response(self, retry_after: float) -> Response:
        return self.pipedrive.rate_limit_response(retry_after)

    def connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        return (
            {"initial_permission": "1", "doi": False, "contacts_sync": True, "deals_sync": True},
            {"api_token": self.pipedrive.api_token, "maileon_api_key": self.maileon.api_key},
        )

    def seed_demo(self) -> None:
        self.pipedrive.seed_demo()
        self.pipedrive.start_delivery_thread()

    def add_contacts(self, count: int, *, with_email: bool = True) -> list[str]:
        ids = []
        for _ in range(count):
            n = len(self.pipedrive.persons) + 1
            email = f"person{n}@example.com" if with_email else None
            ids.append(str(self.pipedrive.add_person(f"Person {n}", email).id))
        return ids

    def contact_count(self) -> int:
        return self.pipedrive.persons.count()

    def contact_count_for(self, object_type: str) -> int:
        if object_type == "maileon_contact":
            return len(self.maileon.contacts)
        return self.contact_count()

    def bad_connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        settings, _ = self.connection_settings(base_url)
        return settings, {
            "api_token": "not-a-token",
            "maileon_api_key": "00000000-0000-0000-0000-000000000000",
        }
