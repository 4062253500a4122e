"""What the panel and the core know about the connector before any call (no network here)."""

from __future__ import annotations

from leadbridge.metadata import AuthKind, ConnectorInfo, ObjectSpec, RateLimit, Setting, SettingType
from leadbridge.types import Direction, HubKind

NAME = "constantcontact"
VERSION = "0.1.0"

AUTH_URL = "https://authz.constantcontact.com/oauth2/default/v1/authorize"
TOKEN_URL = "https://authz.constantcontact.com/oauth2/default/v1/token"
REVOKE_PATH = "/oauth2/default/v1/revoke"
API_URL = "https://api.cc.email/v3"

# The vendor's own endpoints, or a loopback sandbox (http) during tests and the demo. Nothing else:
# the token URL receives the client secret, so it must never be aimed at an arbitrary host.
_OAUTH_HOSTS = r"(?:https://authz\.constantcontact\.com|http://(?:127\.0\.0\.1|localhost):\d{1,5})"
AUTH_URL_PATTERN = _OAUTH_HOSTS + r"/oauth2/default/v1/authorize"
TOKEN_URL_PATTERN = _OAUTH_HOSTS + r"/oauth2/default/v1/token"
SCOPES_PATTERN = r"[a-z_]+(?: [a-z_]+)*"

#: Bulk import caps from the import guide: 40,000 contacts and 4 MB per request (bigger bodies are
#: silently truncated by the vendor, so the connector splits well below).
BULK_MAX_ROWS = 40_000
BULK_MAX_BYTES = 4 * 1024 * 1024

DIRECTIONS = (
    ("both", "Sync both ways"),
    ("to_crm", "To Constant Contact"),
    ("from_crm", "From Constant Contact"),
)

LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img" aria-label="Constant Contact">'
    '<rect width="64" height="64" rx="14" fill="#1a5fb4"/>'
    '<circle cx="32" cy="32" r="17" fill="none" stroke="#fff" stroke-width="6" '
    'stroke-dasharray="80 27" transform="rotate(40 32 32)"/>'
    '<circle cx="32" cy="32" r="5" fill="#f6d32d"/></svg>'
)

SETTINGS = (
    Setting(
        "client_id",
        "API key (client id)",
        required=True,
        pattern=r"[A-Za-z0-9_-]{8,64}",
        help="Developer portal → My Applications → your app → API Key.",
    ),
    Setting(
        "client_secret",
        "Client secret",
        SettingType.SECRET,
        required=True,
        help="Generate Secret in the app's window; shown once by Constant Contact.",
    ),
    Setting(
        "auth_url",
        "Auth URL",
        SettingType.URL,
        required=True,
        default=AUTH_URL,
        pattern=AUTH_URL_PATTERN,
        help="OAuth2 Settings → Auth URL (request to initiate authorization).",
    ),
    Setting(
        "token_url",
        "Token URL",
        SettingType.URL,
        required=True,
        default=TOKEN_URL,
        pattern=TOKEN_URL_PATTERN,
        help="OAuth2 Settings → Token URL (request for bearer tokens).",
    ),
    Setting(
        "scopes",
        "Scopes",
        default="contact_data offline_access",
        pattern=SCOPES_PATTERN,
        help="contact_data is mandatory; offline_access is needed for refresh tokens.",
    ),
    Setting(
        "list_name",
        "Contact list for pushed contacts",
        default="leadbridge",
        help="Constant Contact needs a list for every new contact; created when missing.",
    ),
    Setting(
        "bulk_threshold",
        "Bulk import from",
        SettingType.INTEGER,
        default=50,
        help="Batches with at least this many contacts go through the bulk import activity.",
    ),
    Setting(
        "refresh_token",
        "Bootstrap refresh token",
        SettingType.SECRET,
        help="Optional. A refresh token obtained elsewhere, used once when no grant is stored; "
        "Connect replaces it.",
    ),
)

INFO = ConnectorInfo(
    name=NAME,
    display_name="Constant Contact",
    description="Two-way contact sync with Constant Contact (API v3): created, updated and deleted "
    "contacts in either direction, standard and custom fields, bulk imports for volume.",
    version=VERSION,
    auth_kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
    settings=SETTINGS,
    objects=(
        ObjectSpec(
            "contact",
            "Contacts",
            HubKind.CONTACT,
            frozenset({Direction.TO_CRM, Direction.FROM_CRM, Direction.BOTH}),
            batch_size=BULK_MAX_ROWS,
            supports_delete=True,
        ),
    ),
    rate_limits=(RateLimit(4, 1.0), RateLimit(10_000, 86_400.0)),
    logo_svg=LOGO_SVG,
    docs_url="https://developer.constantcontact.com/api_guide/index.html",
    default_interval_minutes=120,
    features=frozenset({"oauth2_pkce", "bulk_import", "deletes", "campaigns"}),
    extra={"directions": DIRECTIONS},
)
