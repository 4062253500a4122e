"""What the panel shows about the PlanMill connector before any call (ConnectorInfo)."""

from __future__ import annotations

from leadbridge.metadata import AuthKind, ConnectorInfo, ObjectSpec, RateLimit, Setting, SettingType
from leadbridge.types import Direction, HubKind

from .urls import INSTANCE_PATTERN, SERVER_PATTERN

NAME = "planmill"
DEFAULT_ACTION_TITLE = "Contact sent from leadbridge ({company})"
DEFAULT_ACCOUNT = "Contacts without company (leadbridge)"

# An original mark (a stylised mill wheel), not PlanMill's trademark art.
LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img" aria-label="PlanMill">'
    '<rect width="64" height="64" rx="14" fill="#0f4c81"/>'
    '<g fill="none" stroke="#fff" stroke-width="5" stroke-linecap="round">'
    '<circle cx="32" cy="32" r="7"/><path d="M32 25V10M39 32h15M32 39v15M25 32H10"/></g>'
    '<path d="M32 10l8 6h-8zM54 32l-6 8v-8zM32 54l-8-6h8zM10 32l6-8v8z" fill="#7cc4ff"/></svg>'
)

BOTH = frozenset({Direction.TO_CRM, Direction.FROM_CRM, Direction.BOTH})

SETTINGS = (
    # "Enabled" is the connection's own on/off switch (checked by the core on every call), not a
    # setting: a second flag could disagree with it.
    Setting(
        "instance",
        "Instance name",
        required=True,
        pattern=INSTANCE_PATTERN,
        help="The name of your instance as written in its URL: https://online.planmill.com/<instance>/.",
    ),
    Setting(
        "client_id",
        "Client ID",
        required=True,
        help="Created on https://online.planmill.com/<instance>/api/registrations.jsp.",
    ),
    Setting("client_secret", "Client secret", SettingType.SECRET, required=True, secret=True),
    Setting(
        "action_title",
        "Action title",
        default=DEFAULT_ACTION_TITLE,
        help="Subject of the action added on each send. Placeholders: {company}, {first_name}, "
        "{last_name}, {email}, {title} (job title), {phone}.",
    ),
    Setting(
        "default_account",
        "Account for contacts without a company",
        default=DEFAULT_ACCOUNT,
        help="PlanMill contacts always belong to an account; contacts without a company go under this one.",
    ),
    Setting(
        "server",
        "Self-hosted server (optional)",
        pattern=SERVER_PATTERN,
        help="Only for PlanMill servers other than online.planmill.com: https://host, public addresses only.",
    ),
)

OBJECTS = (
    ObjectSpec("contact", "Contacts", HubKind.CONTACT, BOTH, batch_size=50, supports_delete=True),
    ObjectSpec("account", "Accounts", HubKind.COMPANY, BOTH, batch_size=50),
    ObjectSpec("action", "Actions", HubKind.ACTION, frozenset({Direction.TO_CRM}), batch_size=1),
    ObjectSpec("campaign", "Campaigns", HubKind.CAMPAIGN, frozenset({Direction.FROM_CRM})),
)


def connector_info() -> ConnectorInfo:
    return ConnectorInfo(
        name=NAME,
        display_name="PlanMill",
        description=(
            "Send contacts to PlanMill with their account and an action; import the contacts of a "
            "PlanMill campaign into a list; pull changed contacts on a schedule."
        ),
        version="0.1.0",
        auth_kind=AuthKind.OAUTH2_CLIENT_CREDENTIALS,
        settings=SETTINGS,
        objects=OBJECTS,
        # Unpublished today; the 2016 docs said 1000/min. The hub keeps to 5 req/s per tenant.
        rate_limits=(RateLimit(5, 1.0), RateLimit(1000, 60.0)),
        logo_svg=LOGO_SVG,
        docs_url="https://planmill.netlify.app/",
        features=frozenset({"send", "campaign_import", "actions", "incremental_pull"}),
    )
