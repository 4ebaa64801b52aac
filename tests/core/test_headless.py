"""The headless front end and the command line, as real processes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from core import events as ev
from core.chat.model.commands import COMMANDS, Command, CommandError, Where
from core.headless import FRONT_END, json_command, render
from tests.support.procs import ROOT, Cluster, kind


def chordchat(*args: str, input: str = "", timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", *args], input=input, text=True,
                          capture_output=True, timeout=timeout, cwd=ROOT)




@pytest.mark.slow
def test_headless__plain_mode_parses_bare_commands_prints_errors_and_stops_at_exit():
    done = chordchat("--nick", "ann", "--listen", "127.0.0.1:0", "--headless",
                     "--ring-interval", "0.1", "--quiet",
                     input="join #x\nfrobnicate\nhelp\nbell\nsend x hello\nexit\n"
                           "send x not after exit\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"ready: ann id [0-9a-f]{40} at 127\.0\.0\.1:\d+, "
                        r"key [a-z2-7]{4}(-[a-z2-7]{4}){3}", lines[0])
    assert "error: unknown command 'frobnicate'; type help for the list of commands" in lines
    assert "error: bell is a setting of the full-screen UI; headless output has no bell" in lines
    assert any(line.startswith("send <channel> <text>") for line in lines)  # help
    sent = [x for x in lines if x.startswith("sent to")]
    assert len(sent) == 1 and re.fullmatch(r"sent to #x \(seq \d+, 1 member\)", sent[0])
    assert lines[-1] == "bye"


@pytest.mark.slow
def test_headless__end_of_input_sigterm_and_ctrl_c_run_the_exit_sequence(tmp_path):
    with Cluster(tmp_path) as cluster:
        a = cluster.start("ann")
        b = cluster.start("bo", bootstrap=a)
        c = cluster.start("cy", bootstrap=a)
        b.send("join room")
        b.wait_for(kind("joined", channel="room"))
        b.terminate()
        assert b.wait_exit() == 0
        assert b.events[-1]["event"] == "bye"
        assert b.matching(kind("migration", step="leave", key="room"))
        assert b.matching(kind("migration", step="leave-ring"))
        c.close_stdin()
        assert c.wait_exit() == 0
        assert c.events[-1]["event"] == "bye" and c.matching(kind("migration", step="unname"))
        d = cluster.start("di", bootstrap=a)
        d.process.send_signal(signal.SIGINT)   # Ctrl+C
        assert d.wait_exit() == 0
        assert d.events[-1]["event"] == "bye" and d.matching(kind("migration", step="unname"))
        mark = a.mark()
        a.send("msg bo hi")
        assert "unknown nick 'bo'" in a.wait_for(kind("failed"), since=mark)["reason"]
        assert a.stop() == 0


@pytest.mark.slow
def test_cli__usage_errors_exit_2_with_a_clear_message():
    done = chordchat("--nick", "ann", "--listen", "127.0.0.1:0", "--json")
    assert done.returncode == 2 and "--json needs --headless" in done.stderr
    done = chordchat("--nick", "ann", "--listen", "127.0.0.1:70000", "--headless")
    assert done.returncode == 2 and "port 70000 is outside 1-65535" in done.stderr
    done = chordchat("--listen", "127.0.0.1:0", "--headless")   # --listen has a default
    assert done.returncode == 2 and "--nick" in done.stderr        # --nick has none
    with tempfile.TemporaryDirectory() as data_dir:   # no known peer to learn it from
        done = chordchat("--nick", "ann", "--listen", "0.0.0.0:0", "--headless",
                         "--data-dir", data_dir)
    said = done.stdout + done.stderr
    assert done.returncode == 2 and "wildcard" in said and "--advertise" in said
    done = chordchat("--nick", "ann", "--listen", "[::]:4000", "--advertise", "[::]:4000",
                     "--headless")
    assert done.returncode == 2 and "--advertise [::]:4000" in done.stderr
    done = chordchat("--help")
    assert done.returncode == 0
    for flag in ("--bootstrap", "--advertise", "--headless", "--json", "--ring-interval",
                 "--replicas", "--prune-grace", "--retry-for", "--quiet"):
        assert flag in done.stdout


def test_headless__ring_changes_render_from_their_fields():
    assert render(ev.RingChange("predecessor", old=None, new="127.0.0.1:4002")) == \
        "ring: predecessor now 127.0.0.1:4002 (was none)"
    assert render(ev.RingChange("successor", old="127.0.0.1:4000", new="127.0.0.1:4001")) == \
        "ring: successor now 127.0.0.1:4001 (was 127.0.0.1:4000)"
    assert render(ev.RingChange("predecessor_suspected", old="127.0.0.1:4002")) == \
        "ring: predecessor 127.0.0.1:4002 is not answering"
    assert render(ev.RingChange("fingers", count=1)) == "ring: finger table: 1 distinct node"
    assert render(ev.RingChange("started", new="127.0.0.1:4000")) == \
        "ring: node 127.0.0.1:4000 started a new ring"
    assert render(ev.RingChange("started", new="127.0.0.1:4000", bootstrap="127.0.0.1:4001")) \
        == "ring: node 127.0.0.1:4000 joined the ring through 127.0.0.1:4001"
    assert render(ev.RingChange("left")) == "ring: left the ring"
    assert render(ev.RingChange("moved", old="127.0.0.1:4000", new="127.0.0.2:4000")) == \
        "ring: this node moved from 127.0.0.1:4000 to 127.0.0.2:4000"
    line = json.loads(json.dumps(ev.RingChange("fingers", count=3, at=1.5).to_json()))
    assert line == {"event": "ring_change", "kind": "fingers", "old": None, "new": None,
                    "bootstrap": None, "count": 3, "at": 1.5}


@pytest.mark.slow
def test_headless__mode_changes_kicks_and_invitations_render_as_channel_lines():
    assert render(ev.Modes("general", "ada", "+o bob", ops=("ada", "bob"))) == \
        "#general: ada set mode +o bob"
    assert render(ev.Modes("general", "", "", ops=("ada",), modes="+nt",
                           history=True)) == "#general: modes +nt, operators ada"
    assert render(ev.Kicked("general", "ada", "bob", "spam")) == \
        "#general: bob was kicked by ada (spam)"
    assert render(ev.Invited("general", "ada")) == "ada invited you to #general"
    assert render(ev.Invited("general", "ada", invitee="cy")) == "invited cy to #general"


def test_headless__json_mode_prints_ring_changes_unless_quiet():
    done = chordchat("--nick", "ann", "--listen", "127.0.0.1:0", "--headless", "--json",
                     "--ring-interval", "0.1", input="")
    assert done.returncode == 0, done.stderr
    events = [json.loads(x) for x in done.stdout.splitlines()]
    assert all(isinstance(e.pop("at"), float) for e in events)   # every line has its time
    ready = next(e for e in events if e["event"] == "ready")
    assert {"event": "ring_change", "kind": "started", "old": None, "new": ready["address"],
            "bootstrap": None, "count": None} in events
    assert {"event": "ring_change", "kind": "left", "old": None, "new": None,
            "bootstrap": None, "count": None} in events
    assert not any(e["event"] == "log" and e["text"].startswith("ring:") for e in events)
    done = chordchat("--nick", "ann", "--listen", "127.0.0.1:0", "--headless", "--json",
                     "--ring-interval", "0.1", "--quiet", input="")
    events = [json.loads(x)["event"] for x in done.stdout.splitlines()]
    assert done.returncode == 0 and events[0] == "ready" and events[-1] == "bye", done.stderr
    assert "ring_change" not in events


def test_headless__answers_every_front_end_command_of_the_table_with_one_event():
    assert set(FRONT_END) == {s.name for s in COMMANDS if s.where is Where.FRONT_END}
    assert "//text sends /text" in FRONT_END["help"](None, Command("help")).text


def test_headless__messages_show_their_authors_time_actions_and_later_lines_indented():
    from core.headless import plain, when
    at = time.mktime((2024, 5, 14, 9, 5, 0, 0, 0, -1))
    assert when(at, now=at + 3600) == "09:05"
    assert when(at, now=at + 2 * 86400) == "2024-05-14 09:05"   # not today: with the date
    today = time.time()
    hhmm = time.strftime("%H:%M", time.localtime(today))
    line = plain(ev.ChannelMessage("general", "ada", "one\ntwo", "m1", at=today))
    assert line == f"{hhmm} [#general] ada: one\n    two"
    assert plain(ev.ChannelMessage("general", "ada", "waves", "m2", action=True, at=today)) \
        == f"{hhmm} [#general] * ada waves"
    assert plain(ev.PrivateMessage("bob", "me", "nods", "m3", action=True, verified=False,
                                   at=at)) == "2024-05-14 09:05 [private] * bob (unverified) nods"
    history = plain(ev.History("#general", ({"from": "ada", "text": "hi", "msg_id": "m",
                                             "at": at, "outgoing": False,
                                             "state": "delivered"},)))
    assert history.splitlines()[1] == "  2024-05-14 09:05 ada: hi"
    data = json.loads(json.dumps(ev.ChannelMessage("general", "ada", "a\nb", "m1",
                                                   action=True, at=at).to_json()))
    assert (data["text"], data["at"], data["action"]) == ("a\nb", at, True)


def test_headless__a_json_line_is_one_message_of_several_lines_or_a_clear_error():
    assert json_command('{"send": "#Room", "text": "a\\n/exit\\nb"}') == Command(
        "send", ("room", "a\n/exit\nb"))
    assert json_command('{"send": "bo", "text": "hi"}') == Command("msg", ("bo", "hi"))
    assert json_command('{"me": "#room", "text": "waves"}') == Command(
        "me", ("#room", "waves"))
    for bad in ('{"send": "#room"', '["send"]', '{"send": "#room"}', '{"send": 1, "text": "a"}',
                '{"send": "#room", "text": "a", "me": "#room"}', '{"send": " ", "text": "a"}',
                '{"send": "#room", "text": ""}'):
        with pytest.raises(CommandError):
            json_command(bad)


@pytest.mark.slow
def test_headless__json_input_sends_a_multi_line_message_as_one_and_never_runs_it():
    lines = ['join #room', json.dumps({"send": "#room", "text": "top\n/exit\nbottom"}),
             '{"send": "#room"}', 'send room after']
    done = chordchat("--nick", "ann", "--listen", "127.0.0.1:0", "--headless", "--json",
                     "--quiet", input="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    events = [json.loads(x) for x in done.stdout.splitlines()]
    texts = [e["text"] for e in events if e["event"] == "channel"]
    assert texts == ["top\n/exit\nbottom", "after"]   # one message; the /exit in it not run
    assert any(e["event"] == "error" and "a JSON line is" in e["message"] for e in events)
    assert events[-1]["event"] == "bye"
