"""The replay window: where an exporter resumes when its connection breaks (ADR 0037)."""

from __future__ import annotations

from hypervision.soc.state import SinkState, Window


def test_the_window_keeps_the_last_replay_bytes_of_what_was_sent() -> None:
    window = Window(1000, {"record": 40, "checkpoint": 30})
    assert window.resume("record") == 40 and window.resume("checkpoint") == 30  # nothing sent
    for seq in range(41, 61):  # 20 records of 100 bytes
        window.add("record", seq - 1, seq, 100)
    # The last 1,000 bytes may be lost: records 51..60 go again (resume after 50).
    assert window.resume("record") == 50
    window.add("record", 60, 61, 50)  # 52..61 make 950 bytes: 51 still reaches into the window
    assert window.resume("record") == 50
    assert window.resume("checkpoint") == 30
    window.add("checkpoint", 30, 50, 5000)  # one large message: the records are all older
    assert window.resume("record") == 61 and window.resume("checkpoint") == 30


def test_a_file_sink_replays_nothing() -> None:
    window = Window(0, {"record": 7, "checkpoint": 0})
    assert window.resume("record") == 7
    window.add("record", 7, 8, 300)
    assert window.resume("record") == 8 and not window.entries


def test_the_state_as_health_shows_it() -> None:
    state = SinkState("syslog", cursor=90, head=100, leader=True)
    assert state.as_dict() == {
        "state": "exporting",
        "cursor": 90,
        "behind": 10,
        "consecutive_failures": 0,
        "last_error": None,
    }
    state.failing = True
    assert state.as_dict()["state"] == "failing"
