"""The connector's metadata: settings schema, objects and directions, declared limits, logo."""

from __future__ import annotations

from leadbridge.metadata import AuthKind, ConnectorInfo, ObjectSpec, RateLimit, Setting, SettingType
from leadbridge.types import Direction, HubKind

NAME = "salesforce"
DEFAULT_API_VERSION = "66.0"

API_NAME = r"[A-Za-z][A-Za-z0-9_]{0,79}"
# "acme", "acme.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com/" or the
# Lightning UI host people paste from the address bar ("https://acme.lightning.force.com").
MY_DOMAIN = (
    r"(https://)?[A-Za-z0-9][A-Za-z0-9-]{0,79}(\.(sandbox|develop|scratch|demo|patch|trailblaze))?"
    r"(\.my\.salesforce\.com|\.lightning\.force\.com)?/?"
)

LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img" aria-label="Salesforce">'
    '<rect width="64" height="64" rx="14" fill="#0b5cab"/>'
    '<path d="M20 44h25a9 9 0 0 0 1-17.9A12 12 0 0 0 23.5 24 8.5 8.5 0 0 0 20 44z" fill="#fff"/>'
    '<path d="M27 38l5-6 4 4 6-8" stroke="#0b5cab" stroke-width="3" fill="none" stroke-linecap="round"/>'
    "</svg>"
)

_BOTH = frozenset({Direction.TO_CRM, Direction.FROM_CRM, Direction.BOTH})
_PULL = frozenset({Direction.FROM_CRM})

SETTINGS = (
    Setting(
        "auth_flow",
        "Login flow",
        SettingType.CHOICE,
        required=True,
        default="client_credentials",
        choices=(
            ("client_credentials", "Client credentials (recommended; needs My Domain)"),
            ("jwt_bearer", "JWT bearer (certificate)"),
            ("password", "Username + password + security token (legacy)"),
        ),
        help="New orgs block the username-password flow; prefer client credentials or JWT bearer.",
    ),
    Setting(
        "login_host",
        "Login host",
        SettingType.CHOICE,
        required=True,
        default="production",
        choices=(
            ("production", "Production / Developer Edition (login.salesforce.com)"),
            ("sandbox", "Sandbox org (test.salesforce.com)"),
            ("my_domain", "My Domain (required for client credentials)"),
        ),
    ),
    Setting(
        "my_domain",
        "My Domain",
        pattern=MY_DOMAIN,
        help="Your org's My Domain, e.g. acme or https://acme.my.salesforce.com.",
    ),
    Setting(
        "consumer_key",
        "Consumer key",
        SettingType.SECRET,
        required=True,
        help="From the Connected App / External Client App (stored encrypted like the secret).",
    ),
    Setting("consumer_secret", "Consumer secret", SettingType.SECRET),
    Setting("username", "Username", help="The API user (password and JWT bearer flows)."),
    Setting("password", "Password", SettingType.SECRET),
    Setting(
        "security_token",
        "Security token",
        SettingType.SECRET,
        help="Emailed by 'Reset My Security Token'; a password reset issues a new one.",
    ),
    Setting("private_key", "Private key (PEM)", SettingType.SECRET, help="JWT bearer flow only."),
    Setting(
        "api_version",
        "API version",
        default=DEFAULT_API_VERSION,
        pattern=r"[1-9][0-9]{1,2}\.0",
        help="Used unless the org only offers an older one.",
    ),
    Setting(
        "contact_flag_field",
        "Contact import flag field",
        default="Sync_To_Leadbridge__c",
        pattern=API_NAME,
        help="Checkbox or picklist on Contact; only contacts where it says yes are imported.",
    ),
    Setting(
        "contact_flag_values",
        "Flag values meaning yes",
        default="Yes",
        pattern=r"[^'\\]{1,255}",
        help="Comma-separated picklist values (a checkbox only needs to be ticked).",
    ),
    Setting(
        "lead_url_field",
        "Lead field receiving the leadbridge link",
        default="Leadbridge_URL__c",
        pattern=API_NAME,
    ),
    Setting("score_field", "Lead field receiving the score", default="Score__c", pattern=API_NAME),
    Setting("status_field", "Lead field receiving the status", default="Status__c", pattern=API_NAME),
    Setting(
        "external_id_field",
        "External ID field on Lead",
        pattern=API_NAME,
        help="Optional: a Lead field marked External ID; new leads are then upserted by it.",
    ),
    Setting(
        "action_title",
        "Task subject",
        default="Sent from leadbridge",
        help="Subject of the Task added on each send. Placeholders: {company}, {first_name}, {last_name}, "
        "{email}, {title} (job title), {phone}.",
    ),
    Setting("task_status", "Task status", default="Completed"),
)

OBJECTS = (
    ObjectSpec("Lead", "Leads", HubKind.CONTACT, _BOTH, batch_size=5000, supports_delete=True),
    ObjectSpec("Contact", "Contacts (flagged, import only)", HubKind.CONTACT, _PULL, batch_size=5000),
    # Accounts, like Contacts, belong to sales: read for the contacts' companies, never written
    # (a Lead carries its company as text in Company).
    ObjectSpec("Account", "Accounts (import only)", HubKind.COMPANY, _PULL, batch_size=5000),
    ObjectSpec("Task", "Tasks", HubKind.ACTION, frozenset({Direction.TO_CRM}), batch_size=1),
    ObjectSpec("Campaign", "Campaigns", HubKind.CAMPAIGN, _PULL),
)


def connector_info() -> ConnectorInfo:
    return ConnectorInfo(
        name=NAME,
        display_name="Salesforce",
        description=(
            "Two-way Lead sync with per-field directions, flagged Contacts imported from Salesforce, "
            "Accounts as companies, Tasks for actions and campaign import. Writes in sObject "
            "Collections of 200; stops before the org's daily API allocation runs out."
        ),
        version="0.1.0",
        auth_kind=AuthKind.OAUTH2_CLIENT_CREDENTIALS,
        settings=SETTINGS,
        objects=OBJECTS,
        # Developer Edition's daily allocation; Sforce-Limit-Info replaces it with the org's own.
        rate_limits=(RateLimit(15000, 86400),),
        logo_svg=LOGO_SVG,
        default_interval_minutes=120,
        features=frozenset({"campaign_import", "actions", "deletes", "duplicate_detection"}),
    )
