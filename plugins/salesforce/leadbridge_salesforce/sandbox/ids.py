"""Salesforce record ids: 15 case-sensitive characters plus a 3-character case-safe checksum."""

from __future__ import annotations

import string

PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "Lead": "00Q",
    "Task": "00T",
    "Campaign": "701",
    "CampaignMember": "00v",
    "User": "005",
    "Organization": "00D",
    "Job": "750",
}
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX = string.ascii_uppercase + "012345"


def checksum(id15: str) -> str:
    """Per 5-character block, a bitmask of upper-case positions mapped to ``A-Z0-5``."""
    out = ""
    for block in range(3):
        bits = 0
        for pos, ch in enumerate(id15[block * 5 : block * 5 + 5]):
            if ch.isupper():
                bits |= 1 << pos
        out += _SUFFIX[bits]
    return out


def make_id(sobject: str, number: int, pod: str = "5g") -> str:
    body = ""
    n = number
    for _ in range(10):
        body = _BASE62[n % 62] + body
        n //= 62
    id15 = PREFIXES[sobject] + pod + body
    return id15 + checksum(id15)


def to18(value: str) -> str:
    return value + checksum(value) if len(value) == 15 else value
