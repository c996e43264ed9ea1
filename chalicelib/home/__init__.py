"""Home timelines, fanned out on write (docs/DESIGN.md, "Home timeline")."""
