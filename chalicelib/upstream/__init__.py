"""Replaying into the primary: the Upstream port, its HTTP transport, and the generic and Mastodon adapters."""
