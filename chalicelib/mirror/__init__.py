"""The warm standby: accounts, credentials, follows and recent posts of the
primary, kept from its change feed (or the S3 inbox), so its users sign in
and see full timelines from the first minute of an outage."""
