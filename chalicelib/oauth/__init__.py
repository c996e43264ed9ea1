"""Mastodon's OAuth 2 authorization server: apps, the authorize page, codes, tokens and revocation."""
