"""Users, their bearer tokens and the admin token; per-user write limits; operators' upstream tokens."""
