"""The table's DynamoDB Stream: what changed, and the derived work done off
the request path (docs/DESIGN.md, "The stream")."""
