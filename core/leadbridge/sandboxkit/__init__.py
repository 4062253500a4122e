"""The sandbox toolkit: what every vendor imitation needs, so a sandbox is mostly its routes.

* :class:`leadbridge.sandbox.Sandbox` (the base): call log, fault injection, token expiry, a
  rate-limit bucket, JSON answers in the vendor's error envelope for unknown routes and methods;
* :mod:`leadbridge.sandboxkit.oauth`: an OAuth 2.0 server (client credentials, authorization code
  with PKCE, rotating or long-lived refresh tokens, revocation);
* :mod:`leadbridge.sandboxkit.records`: an in-memory record store with ids and modification stamps,
  and keyset pages over it.
"""
