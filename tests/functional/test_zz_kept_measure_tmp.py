import time
from collections import Counter
from chalicelib import wiring
from tests.functional.test_kept_tokens import Calls, mastodon_primary  # noqa: F401


def test_measure(api, monkeypatch):
    monkeypatch.setenv("WRITE_SHARDS", "512")
    wiring.reset()
    calls = Calls()
    for label in ("first", "idle-same-minute", "idle-next-minute", "idle-next-minute"):
        if label == "idle-next-minute":
            time.sleep(60)
        calls.clear()
        wiring.recovery().replay(lambda: 60.0)
        print(label, len(calls.made), dict(Counter(name for name, _ in calls.made)))
