"""The connector toolkit: what every connector would otherwise write for itself.

* :mod:`leadbridge.toolkit.paging`: pagers (next URL, opaque cursor, offset/page, keyset) and the
  cursor codec;
* :mod:`leadbridge.toolkit.answers`: reading vendors' JSON answers and error bodies;
* :mod:`leadbridge.toolkit.vendortypes`: a declarative vendor-type table for field typing and value
  conversion both ways;
* :class:`leadbridge.http.VendorClient`: the transport (auth, pacing, retries, the per-run cache,
  named endpoints), and :mod:`leadbridge.http.oauth` / :mod:`leadbridge.http.auth` for credentials.
"""
