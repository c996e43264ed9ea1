"""The Mastodon client API subset: ids, entities, form parsing, the follow graph and the endpoints' logic."""
