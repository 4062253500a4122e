"""Salesforce connector for leadbridge (hook implementations live in :mod:`.connector`)."""

from .connector import *  # noqa: F403  (the hook implementations are the plugin's public surface)
