"""Posts: the write path, the timelines, and where posts are kept (DynamoDB items, the S3 spool and archive)."""
