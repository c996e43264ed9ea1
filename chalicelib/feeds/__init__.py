"""RSS and Atom feeds of timelines: rendering, conditional GET, markers, live answers and static copies."""
