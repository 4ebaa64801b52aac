"""The ring log's and headless's line for a maintainer found skipping entries."""

from core import events as ev
from core.headless import plain
from tui.ring_log import RingLog


def test_gap__withheld_names_the_maintainer_and_the_replica():
    e = ev.Gap(channel="general", kind="withheld", maintainer="10.0.0.9:4000", count=3,
               replica="10.0.0.7:4000")
    line = RingLog().line(e)
    assert line.attr == "log error" and line.tag == "gap"
    assert "withheld 3 messages of #general" in line.text
    assert "10.0.0.9:4000" in line.text and "replica" in line.text and "10.0.0.7" in line.text
    assert plain(e) == ("gap: maintainer 10.0.0.9:4000 withheld 3 messages of #general; "
                        "got them from replica 10.0.0.7:4000")


def test_gap__unreplicated_and_lost_say_no_replica_has_them():
    for kind in ("unreplicated", "lost"):
        e = ev.Gap(channel="general", kind=kind, maintainer="10.0.0.9:4000", count=1)
        assert "no replica has" in RingLog().line(e).text
        assert "no replica has" in plain(e)
