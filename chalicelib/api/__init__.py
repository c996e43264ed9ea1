"""The HTTP edge: routing, the middleware, reading requests, building responses, and the one error mapping."""
