"""The HTTP toolkit connectors use for every vendor call (the core owns transport concerns)."""

from .auth import AuthManager
from .client import CallStats, Exchange, VendorClient
from .pacing import Pacer
from .redact import REDACTED, install_log_redaction, redact_headers, redact_text

__all__ = [
    "REDACTED",
    "AuthManager",
    "CallStats",
    "Exchange",
    "Pacer",
    "VendorClient",
    "install_log_redaction",
    "redact_headers",
    "redact_text",
]
