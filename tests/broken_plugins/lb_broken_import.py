"""A connector whose import fails (a missing vendor SDK, a syntax error in a sub-module...)."""

raise RuntimeError("vendor SDK missing: cannot import acme_sdk")
