"""What the host knows about the Pipedrive → Maileon connector before any call."""

from __future__ import annotations

from leadbridge.apikeys import ApiKeyHeader, BasicAuth
from leadbridge.metadata import AuthKind, ConnectorInfo, Endpoint, ObjectSpec, RateLimit, Setting, SettingType
from leadbridge.types import Direction, HubKind

PIPEDRIVE_API = "https://api.pipedrive.com"
MAILEON_API = "https://api.maileon.com/1.0"

#: Maileon's permission codes (the "initial permission" of a new contact) and the hub consent each
#: one stands for when Maileon reports it back.
PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("1", "None"),
    ("2", "Single opt-in"),
    ("3", "Confirmed opt-in"),
    ("4", "Double opt-in"),
    ("5", "Double opt-in plus (single-user tracking)"),
    ("6", "Other"),
)
PERMISSION_CONSENT = {
    1: "none",
    2: "single_opt_in",
    3: "confirmed",
    4: "double_opt_in",
    5: "double_opt_in",
    6: "single_opt_in",
}

PERSON = "person"
MAILEON_CONTACT = "maileon_contact"
MAX_CUSTOM_FIELDS = 5

INFO = ConnectorInfo(
    name="pipedrive_maileon",
    display_name="Pipedrive → Maileon",
    description=(
        "Pipedrive persons who subscribe to the newsletter reach Maileon with the chosen permission"
        " (and double opt-in), deals become Maileon transactions, unsubscribes flow back to Pipedrive."
    ),
    version="0.1.0",
    auth_kind=AuthKind.API_KEY,
    auth=ApiKeyHeader("api_token", header="x-api-token"),
    endpoints=(
        Endpoint(
            "maileon",
            "Maileon",
            base_url=MAILEON_API,
            auth=BasicAuth("maileon_api_key", key_only=True),
            # Maileon publishes no request limit; 5 per second is what its own clients stay under.
            rate_limits=(RateLimit(5, 1.0),),
        ),
    ),
    settings=(
        Setting(
            "api_token",
            "Pipedrive API token",
            SettingType.SECRET,
            required=True,
            help="Pipedrive → Settings → Personal preferences → API. The token's user must be an admin"
            " (webhooks need it).",
        ),
        Setting(
            "maileon_api_key",
            "Maileon API key",
            SettingType.SECRET,
            required=True,
            help="Maileon → Settings → API keys; it needs GET, POST, PUT and DELETE rights.",
            pattern=r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}",
        ),
        Setting(
            "initial_permission",
            "Initial permission",
            SettingType.CHOICE,
            default="1",
            choices=PERMISSIONS,
            help="The permission new Maileon contacts get (an existing DOI permission is never lowered).",
        ),
        Setting("doi", "DOI process", SettingType.BOOLEAN, default=False, help="Start a double opt-in mail."),
        Setting(
            "doi_mailing",
            "DOI mailing ID",
            required_if="doi",
            help="The Maileon DOI mailing to send (checked against Maileon by Test connection).",
            pattern=r"[A-Za-z0-9_-]{1,64}",
        ),
        Setting(
            "contacts_sync",
            "Contacts sync to Maileon",
            SettingType.BOOLEAN,
            default=True,
            help="Registers Pipedrive's person created, changed and deleted webhooks.",
        ),
        Setting(
            "deals_sync",
            "Deals sync to Maileon",
            SettingType.BOOLEAN,
            default=False,
            help="Registers the deal webhooks; each new or changed deal becomes a Maileon transaction.",
        ),
        Setting(
            "custom_fields",
            "Custom fields",
            help="Up to five Pipedrive person custom fields (their names, comma-separated); each is sent to"
            " Maileon under the same name and created there when missing.",
        ),
        Setting(
            "newsletter_field",
            "Newsletter field",
            default="Newsletter",
            help="The Pipedrive person option that says whether a person subscribes (created when missing).",
        ),
    ),
    objects=(
        ObjectSpec(
            PERSON,
            "Pipedrive persons",
            HubKind.CONTACT,
            frozenset({Direction.FROM_CRM, Direction.TO_CRM, Direction.BOTH}),
            batch_size=100,
            # Only the Newsletter option is written back: never a new person.
            push_only_linked_to=PERSON,
        ),
        ObjectSpec(
            MAILEON_CONTACT,
            "Maileon contacts",
            HubKind.CONTACT,
            frozenset({Direction.FROM_CRM, Direction.TO_CRM, Direction.BOTH}),
            batch_size=100,
            supports_delete=True,
            push_only_linked_to=PERSON,
            needs_consent=True,
        ),
    ),
    # API-token burst limit of the smallest plan: 20 requests per rolling 2 s window.
    rate_limits=(RateLimit(20, 2.0),),
    default_interval_minutes=60,
    docs_url="https://github.com/leadbridge/leadbridge/blob/main/docs/connectors/pipedrive_maileon.md",
)
