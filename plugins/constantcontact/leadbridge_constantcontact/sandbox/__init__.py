"""A loopback imitation of Constant Contact's API v3 and authorization server.

Serve it with :class:`leadbridge.sandbox.SandboxServer`; the API is under ``/v3`` and the
authorization server under ``/oauth2/default/v1`` of the same origin. See :class:`ConstantContactSandbox`
for the knobs (token lifetimes, refresh mode, 202 pages, activity speed, quotas).
"""

from .server import ConstantContactSandbox

__all__ = ["ConstantContactSandbox"]
