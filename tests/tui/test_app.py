"""The app without a terminal: typed lines, keys, events, unread counts and scroll-back."""

import pytest
import urwid

from core import events as ev
from core.chat.model.commands import COMMANDS, Command, Where
from core.chord import hash_string, hex_id
from tests.tui.doubles import RecordingRuntime
from tui import keys
from tui.app import ChatApp
from tui.front_end_commands import FRONT_END
from tui.handlers import Done
from tui.read_marks import UNREAD_LINE, ReadMarksLoaded
from tui.widgets.screen import ChatScreen

SIZE = (80, 24)


@pytest.fixture
def app():
    a = ChatApp(RecordingRuntime(), "alice", bell=False)
    a.handle(ev.Ready("alice", "ab" * 20, "127.0.0.1:4000"))
    return a


def type_line(app, text):
    for ch in text:
        app.screen.keypress(SIZE, ch)
    app.screen.keypress(SIZE, "enter")


def drain(app):
    """Deliver what the app posted to itself (future callbacks) as the main loop would."""
    app.bridge.drain()


def rows(app):
    return [row.decode() for row in app.screen.render(SIZE, focus=True).text]


def shown_texts(app):
    return app.screen.conversation.messages.texts()


class TestTypedLines:
    def test_app__plain_text_goes_to_the_shown_channel(self, app):
        app.handle(ev.Joined("general", ("alice", "bob")))
        type_line(app, "hello there")
        assert app.runtime.executed == [Command("send", ("general", "hello there"))]

    def test_app__plain_text_goes_to_the_shown_private_conversation(self, app):
        app.handle(ev.PrivateMessage("Bob", "alice", "hi", "m1"))
        app.conversations.select_id("@bob")
        type_line(app, "hi bob")
        assert app.runtime.executed == [Command("msg", ("Bob", "hi bob"))]

    def test_app__lines_starting_with_command_words_are_chat_text_in_a_conversation(self, app):
        app.handle(ev.Joined("general", ("alice", "bob")))
        lines = ["exit strategy is clear", "leave it to me", "send it later", "join the fun",
                 "msg me later", "help me", "bell the cat", "status report: fine", "quit it"]
        for line in lines:
            type_line(app, line)
        assert app.runtime.executed == [Command("send", ("general", line)) for line in lines]
        assert app.runtime.shutdowns == 0 and not app.quitting
        assert not [t for t in shown_texts(app) if t.startswith("! ")]

    def test_app__a_slash_makes_a_command_in_a_conversation_and_two_send_one(self, app):
        app.handle(ev.Joined("general", ("alice", "bob")))
        for line in ("/join rust", "/msg bob hi"):
            type_line(app, line)
        assert app.conversations.shown.title == "bob"  # a private line shows its conversation
        app.screen.keypress(SIZE, "meta 2")
        for line in ("//join is a command", "/leave"):
            type_line(app, line)
        assert app.runtime.executed == [
            Command("join", ("rust",)), Command("msg", ("bob", "hi")),
            Command("send", ("general", "/join is a command")), Command("leave", ("general",))]
        type_line(app, "/exit")
        assert app.runtime.shutdowns == 1 and app.quitting

    def test_app__plain_text_in_home_is_an_error_not_a_send(self, app):
        type_line(app, "hello")
        type_line(app, "//hello")
        assert app.runtime.executed == []
        assert "join a channel first" in shown_texts(app)[-2]
        assert "// sends text starting with / in a channel" in shown_texts(app)[-1]

    def test_app__commands_and_irc_forms_go_to_the_runtime_parsed(self, app):
        for line in ("join #rust", "/join games", "/part games", "status", "msg bob hi"):
            type_line(app, line)
        assert app.runtime.executed == [
            Command("join", ("rust",)), Command("join", ("games",)),
            Command("leave", ("games",)), Command("status"), Command("msg", ("bob", "hi"))]

    def test_app__a_bad_command_shows_the_parsers_message(self, app):
        def error_after(line):
            type_line(app, line)
            assert shown_texts(app)[-1].startswith("! ")
            return shown_texts(app)[-1]

        assert "join needs a channel" in error_after("join")
        assert "unknown command '/frobnicate'" in error_after("/frobnicate")
        app.handle(ev.Joined("general", ()))
        assert "exit takes no arguments" in error_after("/exit now")
        assert "at most 4000 are allowed" in error_after("x" * 4001)
        assert app.runtime.executed == [] and app.runtime.shutdowns == 0

    def test_app__exit_runs_the_graceful_shutdown_once_and_then_ends(self, app):
        type_line(app, "exit")
        assert app.runtime.shutdowns == 1 and app.quitting
        assert app.ring_view.status.state == "leaving"
        type_line(app, "join general")  # no commands while leaving
        type_line(app, "exit")
        assert app.runtime.executed == [] and app.runtime.shutdowns == 1
        assert "no more commands" in shown_texts(app)[-1]
        with pytest.raises(urwid.ExitMainLoop):
            drain(app)  # the shutdown future is done: the UI ends

    def test_app__ctrl_c_is_the_same_graceful_exit_and_twice_closes_at_once(self, app):
        app.screen.keypress(SIZE, "ctrl c")
        assert app.runtime.shutdowns == 1 and app.quitting
        with pytest.raises(urwid.ExitMainLoop):
            app.screen.keypress(SIZE, "ctrl c")

    def test_app__exit_before_the_node_is_ready_is_not_held_back(self):
        app = ChatApp(RecordingRuntime(), "alice", bell=False)
        type_line(app, "exit")
        assert app.runtime.shutdowns == 1 and app.quitting

    def test_app__help_lists_every_command_and_key_and_the_slash_rule_in_a_popup(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        before = shown_texts(app)
        type_line(app, "/help")
        text = "\n".join(app.screen.popup.texts())
        for spec in COMMANDS:
            assert spec.usage in text and spec.help in text
        for binding in keys.BINDINGS:
            assert binding.label in text and binding.help in text
        assert "//text sends /text" in text
        assert app.runtime.executed == [] and shown_texts(app) == before  # not in #general
        assert any(" help " in r for r in rows(app))
        app.screen.keypress(SIZE, "esc")
        assert app.screen.popup is None and not any(" help " in r for r in rows(app))

    def test_app__at_40x12_the_help_hint_gives_way_whole_and_keeps_how_to_close(self, app):
        app.screen.keypress(SIZE, "f1")
        at = {size: [row.decode() for row in app.screen.render(size, focus=True).text]
              for size in ((40, 12), SIZE)}
        small = next(r for r in at[(40, 12)] if "closes" in r)
        assert "Esc closes" in small and "p/Down" not in small   # not cut in a word
        assert any("Up/Down/PgUp/PgDn scroll · Esc closes" in r for r in at[SIZE])

    def test_app__f1_opens_the_same_help_and_f1_again_closes_it(self, app):
        app.screen.keypress(SIZE, "f1")
        assert any("Alt+1…9" in t for t in app.screen.popup.texts())
        app.screen.keypress(SIZE, "x")   # the popup has the keys
        assert app.screen.input.edit_text == ""
        app.screen.keypress(SIZE, "f1")
        assert app.screen.popup is None

    def test_app__a_command_that_fails_in_the_runtime_is_shown(self, app):
        import concurrent.futures
        failed = concurrent.futures.Future()
        failed.set_exception(RuntimeError("ring is on fire"))
        app.handle(Done("join x", failed))
        assert shown_texts(app)[-1] == "! join x: ring is on fire"

    def test_app__an_event_it_cannot_show_is_reported_and_the_rest_still_shown(self, app):
        app.bridge.post(ev.Joined("general", members=None))  # not iterable: the handler fails
        app.bridge.post(ev.Info("still here"))
        drain(app)
        assert "could not show a Joined event" in shown_texts(app)[-2]
        assert shown_texts(app)[-1] == "still here"


class TestInputHistoryAndCompletionKeys:
    def test_app__up_and_down_recall_typed_lines(self, app):
        type_line(app, "join general")
        type_line(app, "hello")
        app.screen.keypress(SIZE, "up")
        assert app.screen.input.edit_text == "hello"
        app.screen.keypress(SIZE, "up")
        assert app.screen.input.edit_text == "join general"
        app.screen.keypress(SIZE, "down")
        app.screen.keypress(SIZE, "down")
        assert app.screen.input.edit_text == ""

    def test_app__tab_completes_commands_channels_and_nicks_seen(self, app):
        app.handle(ev.Joined("general", ("alice", "bob")))
        app.handle(ev.MemberJoined("general", "Carol"))
        app.conversations.select(0)  # home: command words complete bare
        for typed, want in (("jo", "join "), ("leave ge", "leave general "),
                            ("msg ca", "msg Carol "), ("/pa", "/part ")):
            app.screen.input.replace(typed)
            app.screen.keypress(SIZE, "tab")
            assert app.screen.input.edit_text == want

    def test_app__in_a_conversation_tab_completes_commands_only_after_a_slash(self, app):
        app.handle(ev.Joined("general", ("alice", "bob", "Lena")))
        for typed, want in (("jo", "jo"), ("/jo", "/join "), ("le", "Lena: "),
                            ("leave ge", "leave ge"), ("/leave ge", "/leave general ")):
            app.screen.input.replace(typed)
            app.screen.keypress(SIZE, "tab")
            assert app.screen.input.edit_text == want, typed


class TestConversations:
    def test_app__joined_channel_shows_in_the_side_pane_and_is_shown(self, app):
        app.handle(ev.Joined("general", ("alice", "bob")))
        assert app.screen.side.lines()[1].startswith("2 #general")
        assert app.conversations.shown.title == "#general"
        assert "you joined #general; members: alice, bob" in shown_texts(app)[-1]

    def test_app__the_title_counts_members_in_the_singular_for_one(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        assert rows(app)[0].split("│")[1].strip() == "#general  (1 member)"
        app.handle(ev.MemberJoined("general", "bob"))
        assert rows(app)[0].split("│")[1].strip() == "#general  (2 members)"

    def test_app__messages_elsewhere_raise_unread_counts(self, app):
        app.handle(ev.Joined("general", ()))
        app.handle(ev.Joined("rust", ()))  # now shown
        for i in range(3):
            app.handle(ev.ChannelMessage("general", "bob", f"m{i}", f"id{i}"))
        app.handle(ev.ChannelMessage("rust", "bob", "seen", "idr"))
        side = app.screen.side.lines()
        assert side[1].rstrip().endswith("3")
        assert not side[2].rstrip()[-1].isdigit()
        app.screen.keypress(SIZE, "meta 2")
        assert app.conversations.shown.title == "#general"
        assert app.screen.side.lines()[1].rstrip().endswith("#general")
        assert [t.split(" ", 1)[1] for t in shown_texts(app)[-3:]] == [
            "<bob> m0", "<bob> m1", "<bob> m2"]

    def test_app__a_private_message_opens_a_conversation_with_a_mark(self, app):
        app.handle(ev.Joined("general", ()))
        app.handle(ev.PrivateMessage("bob", "alice", "psst", "p1"))
        line = app.screen.side.lines()[2]
        assert "bob" in line and line.rstrip().endswith("1!")

    def test_app__a_mention_marks_the_conversation(self, app):
        app.handle(ev.Joined("general", ()))
        app.handle(ev.Joined("rust", ()))
        app.handle(ev.ChannelMessage("general", "bob", "ALICE, look", "x"))
        assert app.screen.side.lines()[1].rstrip().endswith("1!")
        app.handle(ev.ChannelMessage("general", "bob", "malice", "y"))
        assert app.screen.side.lines()[1].rstrip().endswith("2!")

    def test_app__own_messages_do_not_count_as_unread(self, app):
        app.handle(ev.Joined("general", ()))
        app.handle(ev.Joined("rust", ()))
        app.handle(ev.ChannelMessage("general", "alice", "mine", "x"))
        assert app.conversations.channel("general").unread == 0

    def test_app__ctrl_n_and_ctrl_p_step_through_conversations(self, app):
        app.handle(ev.Joined("a", ()))
        app.handle(ev.Joined("b", ()))
        app.screen.keypress(SIZE, "ctrl n")
        assert app.conversations.shown.kind == "home"
        app.screen.keypress(SIZE, "ctrl p")
        assert app.conversations.shown.title == "#b"

    def test_app__join_and_leave_notices_appear_in_the_channel(self, app):
        app.handle(ev.Joined("general", ()))
        app.handle(ev.MemberJoined("general", "bob"))
        app.handle(ev.MemberLeft("general", "bob", reason="pruned"))
        assert "→ bob joined #general" in shown_texts(app)[-2]
        assert "← bob left #general (pruned)" in shown_texts(app)[-1]

    def test_app__mode_changes_and_kicks_appear_in_the_channel(self, app):
        app.handle(ev.Joined("general", ("bob",)))
        app.handle(ev.Modes("general", "", "", ops=("bob",), history=True))   # on joining
        app.handle(ev.Modes("general", "bob", "+m", ops=("bob",)))
        app.handle(ev.Kicked("general", "bob", "cy", "spam"))
        assert "bob set mode +m" in shown_texts(app)[-2]
        assert "← cy was kicked by bob (spam)" in shown_texts(app)[-1]
        assert not any("set mode" in t for t in shown_texts(app)[:-2])

    def test_app__a_click_on_the_side_pane_shows_that_conversation(self, app):
        app.handle(ev.Joined("general", ()))
        app.handle(ev.Joined("rust", ()))
        rows(app)
        app.screen.mouse_event(SIZE, "mouse press", 1, 3, 1, True)  # row 1: #general
        assert app.conversations.shown.title == "#general"
        app.screen.keypress(SIZE, "x")  # typing still goes to the input line
        assert app.screen.input.edit_text == "x"

    def test_app__the_log_pane_shows_migrations_and_ring_changes_with_time(self, app):
        app.handle(ev.MigrationStep("delete", "channel", "general", "127.0.0.1:4000",
                                "127.0.0.1:4001", members=3))
        app.handle(ev.RingChange("predecessor", old=None, new="127.0.0.1:4002"))
        log = app.screen.log.texts()
        succ, pred = (hex_id(hash_string(f"127.0.0.1:{p}"))[:8] for p in (4001, 4002))
        assert log[-2].endswith(f" migration  moved #general (3 members) to {succ} "
                                "127.0.0.1:4001")
        assert log[-1].endswith(f"predecessor → {pred} 127.0.0.1:4002 (was none)")
        assert all(t[2] == ":" and t[5] == ":" for t in log)  # HH:MM:SS first

    def test_app__a_migration_line_stands_out_with_its_tag(self, app):
        app.handle(ev.MigrationStep("receive", "channel", "general", "127.0.0.1:4002",
                                "127.0.0.1:4000", members=2))
        canvas = app.screen.log.render((80, 6))
        row = next(r for r in canvas.content() if any(b"received" in seg for *_, seg in r))
        attrs = [a for a, _, seg in row if seg.strip()]
        assert attrs[:3] == ["log time", "log migration tag", "log migration"]

    def test_app__the_status_bar_shows_neighbours_by_short_id(self, app):
        app.handle(ev.RingStatus("ab" * 20, "127.0.0.1:4000", "127.0.0.1:4002",
                                 "127.0.0.1:4001", channels=1, names=2))
        pred = hex_id(hash_string("127.0.0.1:4002"))[:8]
        succ = hex_id(hash_string("127.0.0.1:4001"))[:8]
        assert f"pred {pred} succ {succ}" in app.screen.status.text
        assert "keeps 1 ch 2 names" in app.screen.status.text

    def test_app__lines_typed_before_ready_run_once_ready(self):
        app = ChatApp(RecordingRuntime(), "alice", bell=False)
        type_line(app, "join general")
        assert app.runtime.executed == []
        assert "will run when ready: join #general" in shown_texts(app)[-1]
        app.handle(ev.Ready("alice", "ab" * 20, "127.0.0.1:4000"))
        assert app.runtime.executed == [Command("join", ("general",))]

    def test_app__the_log_pane_toggles(self, app):
        assert any("ring log" in r for r in rows(app))
        app.screen.keypress(SIZE, "f2")
        assert not any("ring log" in r for r in rows(app))
        app.screen.keypress(SIZE, "meta l")
        assert any("ring log" in r for r in rows(app))

    def test_app__the_whole_screen_fits_80_by_24(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        screen = rows(app)
        assert len(screen) == 24 and all(len(r) == 80 for r in screen)
        assert screen[-2].startswith(" alice abababab 127.0.0.1:4000")
        assert screen[-1].startswith("#general>")


class TestScrollBack:
    def test_app__new_lines_do_not_yank_a_scrolled_back_view(self, app):
        app.handle(ev.Joined("general", ()))
        for i in range(40):
            app.handle(ev.ChannelMessage("general", "bob", f"line {i}", f"a{i}"))
        assert any("line 39" in r for r in rows(app))
        app.screen.keypress(SIZE, "page up")
        before = rows(app)
        assert not any("line 39" in r for r in before)
        for i in range(40, 45):
            app.handle(ev.ChannelMessage("general", "bob", f"line {i}", f"a{i}"))
        after = rows(app)
        assert after[1:12] == before[1:12]  # the lines read stay where they were
        assert any("more below (5 new)" in r for r in after)
        while any("more below" in r for r in rows(app)):
            app.screen.keypress(SIZE, "page down")
        assert any("line 44" in r for r in rows(app))
        app.handle(ev.ChannelMessage("general", "bob", "line 45", "a45"))
        assert any("line 45" in r for r in rows(app))  # following again


class TestLogPane:
    def fill(self, app, count):
        for i in range(count):
            app.handle(ev.Log(f"event {i}"))

    def log_rows(self, app):
        screen = rows(app)
        top = next(i for i, r in enumerate(screen) if r.startswith(" ring log"))
        return screen[top:top + 6]

    def test_app__the_log_follows_new_lines_when_not_scrolled_back(self, app):
        self.fill(app, 30)
        assert "event 29" in self.log_rows(app)[-1]
        app.handle(ev.Log("event 30"))
        assert "event 30" in self.log_rows(app)[-1]

    def test_app__alt_pgup_scrolls_the_log_back_and_new_lines_do_not_yank_it(self, app):
        self.fill(app, 30)
        rows(app)
        app.screen.keypress(SIZE, "meta page up")
        before = self.log_rows(app)
        assert not any("event 29" in r for r in before)
        app.handle(ev.Log("event 30"))
        after = self.log_rows(app)
        assert after[1:4] == before[1:4]
        assert "more below (1 new): Alt+PgDn" in after[-1]
        # the conversation pane is not scrolled by it
        assert app.screen.conversation.messages.following
        while "more below" in self.log_rows(app)[-1]:
            app.screen.keypress(SIZE, "meta page down")
        assert "event 30" in self.log_rows(app)[-1]
        app.handle(ev.Log("event 31"))
        assert "event 31" in self.log_rows(app)[-1]  # following again

    def test_app__shift_pgup_scrolls_it_too_and_shows_a_hidden_log(self, app):
        self.fill(app, 30)
        app.screen.keypress(SIZE, "f2")
        assert not app.screen.log_visible
        app.screen.keypress(SIZE, "shift page up")
        assert app.screen.log_visible
        rows(app)
        app.screen.keypress(SIZE, "shift page up")
        assert not app.screen.log.messages.following

    def test_app__the_mouse_wheel_scrolls_the_log_under_it(self, app):
        self.fill(app, 30)
        screen = rows(app)
        top = next(i for i, r in enumerate(screen) if r.startswith(" ring log"))
        for _ in range(3):
            app.screen.mouse_event(SIZE, "mouse press", 4, 10, top + 2, True)
        assert not app.screen.log.messages.following
        assert "more below" in self.log_rows(app)[-1]
        assert app.screen.conversation.messages.following


class TestMentionsAndBell:
    def test_app__the_users_nick_is_highlighted_in_a_message(self, app):
        app.handle(ev.Joined("general", ()))
        app.handle(ev.ChannelMessage("general", "bob", "hey Alice, and alice again", "m1"))
        canvas = app.screen.conversation.render((61, 20))
        row = next(r for r in canvas.content() if any(b"hey" in seg for *_, seg in r))
        marked = [seg.decode() for a, _, seg in row if a == "mention"]
        assert marked == ["Alice", "alice"]

    def test_app__no_highlight_without_a_mention_or_in_own_lines(self, app):
        app.handle(ev.Joined("general", ()))
        app.handle(ev.ChannelMessage("general", "bob", "malice aforethought", "m1"))
        app.handle(ev.ChannelMessage("general", "alice", "I am alice", "m2"))
        canvas = app.screen.conversation.render((61, 20))
        assert not any(a == "mention" for r in canvas.content() for a, _, _ in r)

    def test_app__a_private_message_naming_the_user_is_highlighted(self, app):
        app.handle(ev.PrivateMessage("bob", "alice", "alice: psst", "p1"))
        app.conversations.select_id("@bob")
        app.handle(ev.Info("shown"))  # bring the pane up to date
        canvas = app.screen.conversation.render((61, 20))
        assert any(a == "mention" and seg == b"alice" for r in canvas.content() for a, _, seg in r)

    def test_app__bell_off_and_on_are_answered_by_the_ui(self, app):
        type_line(app, "bell off")
        assert app.bell is False and "the bell is off" in shown_texts(app)[-1]
        type_line(app, "/bell on")
        assert app.bell is True and "the bell is on" in shown_texts(app)[-1]
        type_line(app, "bell")
        assert app.bell is False
        type_line(app, "bell loud")
        assert app.bell is False and "bell takes on or off" in shown_texts(app)[-1]
        assert app.runtime.executed == []

    def test_app__the_ui_answers_every_front_end_command_of_the_table(self):
        assert set(FRONT_END) == {s.name for s in COMMANDS if s.where is Where.FRONT_END}

    def test_app__f3_toggles_the_bell_and_alt_b_is_word_back(self, app):
        app.screen.keypress(SIZE, "f3")
        assert app.bell is True  # the fixture starts with it off
        app.screen.keypress(SIZE, "f3")
        assert app.bell is False
        app.screen.input.replace("two words")
        app.screen.keypress(SIZE, "meta b")
        assert app.bell is False and app.screen.input.edit_pos == len("two ")

    def test_app__help_lists_bell_and_tab_completes_it(self, app):
        type_line(app, "help")
        assert any("bell [on|off]" in t for t in app.screen.popup.texts())
        app.screen.keypress(SIZE, "esc")
        for typed, want in (("be", "bell "), ("bell of", "bell off "), ("/be", "/bell ")):
            app.screen.input.replace(typed)
            app.screen.keypress(SIZE, "tab")
            assert app.screen.input.edit_text == want
        app.screen.input.replace("bell o")
        app.screen.keypress(SIZE, "tab")
        assert app.screen.input.edit_text == "bell off "
        app.screen.keypress(SIZE, "tab")
        assert app.screen.input.edit_text == "bell on "


class TestScreenKeys:
    def test_screen__every_bound_key_emits_its_action_and_the_app_has_it(self):
        screen = ChatScreen()
        got = []
        urwid.connect_signal(screen, "action", lambda action, pos: got.append((action, pos)))
        for binding in keys.BINDINGS:
            if binding.action.startswith(keys.EDIT_PREFIX):
                continue  # the input line's own: TestEditingKeys
            for i, key in enumerate(binding.keys):
                screen.keypress(SIZE, key)
                assert got[-1] == (binding.action, i)
            assert callable(getattr(ChatApp, "act_" + binding.action))

    def test_screen__editing_keys_edit_the_input_line_and_emit_nothing(self):
        screen = ChatScreen()
        got = []
        urwid.connect_signal(screen, "action", lambda action, pos: got.append(action))
        edits = [b for b in keys.BINDINGS if b.action.startswith(keys.EDIT_PREFIX)]
        assert len(edits) >= 12
        for binding in edits:
            screen.input.replace("one two", cursor=4)
            for key in binding.keys:
                screen.keypress(SIZE, key)
        assert got == []


class TestKeptHistory:
    def test_app__history_at_start_fills_conversations_with_own_lines_marked(self):
        app = ChatApp(RecordingRuntime(), "alice", bell=False)
        app.handle(ev.History("#general", (
            {"from": "bob", "text": "earlier", "msg_id": "h1", "at": 0.0, "outgoing": False,
             "state": "delivered"},
            {"from": "alice", "text": "unsent", "msg_id": "h2", "at": 0.0, "outgoing": True,
             "state": "pending"})))
        app.handle(ev.Ready("alice", "ab" * 20, "127.0.0.1:4000"))
        app.screen.keypress(SIZE, "meta 2")
        assert app.conversations.shown.title == "#general"
        assert shown_texts(app)[-2].endswith("<bob> earlier")
        assert shown_texts(app)[-1].endswith("<alice> unsent …")
        app.handle(ev.Delivered("#general", "h2"))
        assert shown_texts(app)[-1].endswith("<alice> unsent ✓")

    def test_app__an_own_line_is_shown_pending_once_then_delivered(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        app.handle(ev.Pending("#general", "m1", "hello", "alice"))
        assert shown_texts(app)[-1].endswith("<alice> hello …")
        app.handle(ev.ChannelMessage("general", "alice", "hello", "m1"))   # its echo
        app.handle(ev.Sent("general", "hello", "m1", 3))
        app.handle(ev.Delivered("#general", "m1"))
        assert [t for t in shown_texts(app) if "hello" in t] == [shown_texts(app)[-1]]
        assert shown_texts(app)[-1].endswith("<alice> hello ✓")

    def test_app__a_message_that_cannot_go_is_marked_and_said_why(self, app):
        app.handle(ev.PrivateMessage("zed", "alice", "hi", "m0"))   # a conversation before
        app.handle(ev.Pending("zed", "m1", "anyone?", "alice"))
        app.handle(ev.Failed("zed", "m1", "unknown nick 'zed'"))
        texts = shown_texts(app)
        assert texts[-2].endswith("anyone? ✗ not sent") and "unknown nick 'zed'" in texts[-1]

    def test_app__a_msg_to_a_nick_nobody_holds_leaves_no_conversation_and_one_error(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        type_line(app, "/msg zed anyone?")
        app.handle(ev.Pending("zed", "m1", "anyone?", "alice"))
        assert app.conversations.shown.id == "@zed"
        app.handle(ev.Failed("zed", "m1", "unknown nick 'zed': no node has registered it"))
        assert [c.id for c in app.conversations.items] == ["*", "#general"]
        assert app.conversations.shown.id == "#general"
        texts = shown_texts(app)
        assert sum("unknown nick 'zed'" in t for t in texts) == 1 and "anyone?" not in texts[-1]

    def test_app__messages_show_their_own_time_actions_lines_and_day_changes(self, app):
        import time as _time
        today = _time.time()
        day = 86400
        app.handle(ev.ChannelMessage("general", "bob", "old news", "h1", history=True,
                                     at=today - 3 * day))
        app.handle(ev.ChannelMessage("general", "bob", "waves", "h2", history=True,
                                     action=True, at=today - 3 * day + 60))
        app.handle(ev.Joined("general", ("alice", "bob")))
        app.handle(ev.ChannelMessage("general", "bob", "first\nsecond", "m1", at=today))
        app.conversations.select_id("#general")
        texts = shown_texts(app)
        stamp = _time.strftime
        old = _time.localtime(today - 3 * day)
        assert texts[0] == stamp("── %A %d %B %Y ──", old)
        assert texts[1] == stamp("%H:%M <bob> old news", old)
        assert texts[2] == stamp("%H:%M * bob waves", _time.localtime(today - 3 * day + 60))
        assert texts[3].startswith(stamp("── %A", _time.localtime(today)))   # today again
        assert "you joined #general" in texts[4]
        assert texts[5].endswith("<bob> first\nsecond")
        at = rows(app)
        first = next(r for r in at if "<bob> first" in r)
        second = at[at.index(first) + 1]
        assert second.rstrip().endswith(" second")
        assert second.index("second") == first.index("first")   # under the first line's text

    def test_app__search_goes_to_the_runtime_and_a_hit_opens_its_line(self, app):
        app.handle(ev.Joined("general", ()))
        for i in range(40):
            app.handle(ev.ChannelMessage("general", "bob", f"line {i}", f"id{i}"))
        app.screen.keypress(SIZE, "meta 1")
        type_line(app, "search line 3")
        assert app.runtime.searched == ["line 3"]
        hit = {"conversation": "#general", "msg_id": "id3", "from": "bob", "text": "line 3",
               "at": 0.0}
        other = {**hit, "msg_id": "id30", "text": "line 30", "at": 1.0}
        app.handle(ev.SearchResults("line 3", (hit, other)))
        assert app.screen.popup.texts()[0].endswith("#general <bob> line 3")
        assert shown_texts(app)[-1] != "line 3"   # nothing added to the conversation
        app.screen.keypress(SIZE, "down")   # the arrows choose a hit, Enter opens it
        app.screen.keypress(SIZE, "up")
        app.screen.keypress(SIZE, "enter")
        assert app.screen.popup is None and app.runtime.executed == []
        assert app.conversations.shown.title == "#general"
        messages = app.screen.conversation.messages
        assert messages.focus_position == messages.find("id3")
        assert "line 3" in " ".join(rows(app))


class TestPasteAndSeveralLines:
    def paste(self, app, text):
        app.screen.keypress(SIZE, "begin paste")
        for ch in text:
            app.screen.keypress(SIZE, {"\n": "enter", "\t": "tab"}.get(ch, ch))
        app.screen.keypress(SIZE, "end paste")

    def test_app__a_paste_stays_in_the_input_until_enter_sends_it_as_one_message(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        self.paste(app, "one\n/exit\n\tthree")
        assert app.runtime.executed == [] and not app.quitting
        assert app.screen.input.edit_text == "one\n/exit\n    three"
        assert rows(app)[-3:] == [r.ljust(80) for r in ("#general> one", "/exit", "    three")]
        app.screen.keypress(SIZE, "enter")
        assert app.runtime.executed == [Command("send", ("general", "one\n/exit\n    three"))]
        assert not app.quitting and app.runtime.shutdowns == 0

    def test_app__a_one_line_paste_starting_with_a_slash_is_text_too(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        self.paste(app, "/leave")
        app.screen.keypress(SIZE, "enter")
        assert app.runtime.executed == [Command("send", ("general", "/leave"))]

    def test_app__keys_inside_a_paste_are_text_not_bindings(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        app.screen.keypress(SIZE, "begin paste")
        for key in ("a", "ctrl n", "meta 1", "f1", "b"):
            app.screen.keypress(SIZE, key)
        app.screen.keypress(SIZE, "end paste")
        assert app.screen.input.edit_text == "ab"
        assert app.conversations.shown.title == "#general" and app.screen.popup is None

    def test_app__alt_enter_types_a_newline_and_enter_sends_both_lines(self, app):
        app.handle(ev.PrivateMessage("bob", "alice", "hi", "p1"))
        app.conversations.select_id("@bob")
        for key in ("h", "i", "meta enter", "/", "m", "e"):
            app.screen.keypress(SIZE, key)
        app.screen.keypress(SIZE, "enter")
        assert app.runtime.executed == [Command("msg", ("bob", "hi\n/me"))]

    def test_app__several_lines_in_home_have_nowhere_to_go(self, app):
        self.paste(app, "join general\nhello")
        app.screen.keypress(SIZE, "enter")
        assert app.runtime.executed == [] and "join a channel first" in shown_texts(app)[-1]

    def test_app__up_moves_between_the_lines_before_the_input_history(self, app):
        type_line(app, "status")
        self.paste(app, "one\ntwo")
        app.screen.keypress(SIZE, "up")
        assert app.screen.input.edit_text == "one\ntwo" and app.screen.input.edit_pos == 3
        app.screen.keypress(SIZE, "up")
        assert app.screen.input.edit_text == "status"


class TestOwnLinesInOrder:
    def test_app__a_line_shows_at_once_and_help_after_it_shows_below_it(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        type_line(app, "hello")
        app.screen.keypress(SIZE, "f1")   # answered at once, before the core's Pending
        app.screen.keypress(SIZE, "esc")
        app.handle(ev.Info("answer to a later command"))
        app.handle(ev.Pending("#general", "m1", "hello", "alice"))
        texts = shown_texts(app)
        assert [t for t in texts if "hello" in t] == [texts[-2]]   # shown once, where typed
        assert texts[-2].endswith("<alice> hello …") and texts[-1] == "answer to a later command"
        app.handle(ev.Delivered("#general", "m1"))
        assert shown_texts(app)[-2].endswith("<alice> hello ✓")

    def test_app__a_line_the_core_refuses_is_marked_not_sent(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        type_line(app, "hello")   # the recording runtime posts no Pending
        drain(app)                # the command's Done
        assert shown_texts(app)[-1].endswith("<alice> hello ✗ not sent")


class TestLongLines:
    URL = "https://example.org/" + "a1b2c3d4e5" * 10 + "/end"

    def test_app__a_long_link_wraps_without_an_indent_inside_it(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        app.handle(ev.ChannelMessage("general", "bob", f"see {self.URL} please", "u1"))
        screen = [r.split("│", 1)[1] for r in rows(app)[1:16]]
        start = next(i for i, r in enumerate(screen) if "https://" in r)
        joined = "".join(screen[start:start + 4])
        assert self.URL in joined   # its rows, put side by side, give the link back
        assert not screen[start + 1].startswith(" ")

    def test_app__a_message_taller_than_the_pane_shows_its_start_a_marker_and_its_mark(
            self, app):
        app.handle(ev.Joined("general", ("alice",)))
        text = "start " + "word " * 599 + "END"
        type_line(app, text)
        app.handle(ev.Pending("#general", "m1", text, "alice"))
        app.handle(ev.Delivered("#general", "m1"))
        screen = rows(app)
        assert any("<alice> start word" in r for r in screen)
        assert "── more below: PgDn ── ✓" in screen[15]
        assert not any("END" in r for r in screen)
        for _ in range(20):
            app.screen.keypress(SIZE, "page down")
        screen = rows(app)
        assert any("word END ✓" in r for r in screen)
        assert not any("more below" in r for r in screen)


    @staticmethod
    def at(app, size):
        return [row.decode() for row in app.screen.render(size, focus=True).text]

    def test_app__a_resize_never_takes_a_line_that_fits_for_one_too_tall(self, app):
        # seen in tmux: after 80x24 -> 40x12 the last line, two rows, was shown cut with
        # "more below" over its second row, and the marker stayed back at 80x24
        for event in (
                ev.ChannelMessage("general", "bob", f"see {self.URL}", "h1", history=True),
                ev.Joined("general", ("alice", "bob")),
                ev.Pending("#general", "m1", "waves at everyone in the channel today",
                           "alice", action=True),
                ev.Delivered("#general", "m1"),
                ev.Pending("#general", "m2", "top\nbottom", "alice"),
                ev.Delivered("#general", "m2")):
            app.handle(event)
            self.at(app, SIZE)
        for size in (SIZE, (40, 12), SIZE, (40, 12)):
            screen = self.at(app, size)
            assert not any("more below" in r for r in screen), (size, screen)
            assert any(r.rstrip().endswith("bottom ✓") for r in screen), (size, screen)

    def test_app__the_side_pane_cuts_titles_when_narrow_and_shows_them_whole_again(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        side = lambda size: [r.split("│", 1)[0] for r in self.at(app, size)[:2]]  # noqa: E731
        assert side((40, 12)) == ["1 ch…   ", "2 #g…   "]
        assert [r.rstrip() for r in side(SIZE)] == ["1 chordchat", "2 #general"]

    def test_app__a_cut_line_that_fits_after_the_terminal_grew_is_shown_whole(self, app):
        app.handle(ev.Joined("general", ("alice",)))
        app.handle(ev.ChannelMessage("general", "bob", "start " + "word " * 60 + "END", "t"))
        screen = self.at(app, (40, 12))
        assert "more below" in "".join(screen) and "END" not in "".join(screen)
        screen = self.at(app, SIZE)
        assert "more below" not in "".join(screen) and "END" in "".join(screen)


class TestReadMarks:
    HISTORY = tuple({"from": "bob", "text": f"old {i}", "msg_id": f"h{i}", "at": float(i),
                     "outgoing": False, "state": "delivered"} for i in range(5))

    def test_app__unread_counts_and_the_last_read_line_survive_a_restart(self, tmp_path):
        kept: list[dict] = []
        first = ChatApp(RecordingRuntime(), "alice", bell=False, keep_marks=kept.append)
        first.handle(ReadMarksLoaded({}))   # no file yet
        first.handle(ev.History("#general", self.HISTORY[:3]))
        first.screen.keypress(SIZE, "meta 2")   # #general read up to h2
        first.screen.keypress(SIZE, "meta 1")
        first.handle(ev.ChannelMessage("general", "bob", "old 3", "h3"))
        assert kept[-1]["#general"] == {"read": "h2", "unread": 1, "mention": False}

        second = ChatApp(RecordingRuntime(), "alice", bell=False, keep_marks=kept.append)
        second.handle(ev.History("#general", self.HISTORY))   # h3, h4 came after the mark
        second.handle(ReadMarksLoaded(kept[-1]))              # the file read after History
        assert second.conversations.channel("general").unread == 2
        assert second.screen.side.lines()[1].rstrip().endswith("2")
        second.screen.keypress(SIZE, "meta 2")
        texts = shown_texts(second)
        assert texts.index(UNREAD_LINE) == texts.index(next(t for t in texts if "old 2" in t)) + 1
        assert kept[-1]["#general"]["read"] == "h4" and kept[-1]["#general"]["unread"] == 0

    def test_app__nothing_is_saved_before_the_marks_are_read(self):
        kept: list[dict] = []
        app = ChatApp(RecordingRuntime(), "alice", bell=False, keep_marks=kept.append)
        app.handle(ev.History("#general", self.HISTORY))
        app.screen.keypress(SIZE, "meta 2")
        assert kept == []

    def test_read_marks_file__written_off_the_ui_thread_and_read_back(self, tmp_path):
        import threading

        from tui.read_marks import ReadMarksFile
        posted, threads = [], []
        path = tmp_path / "users" / "alice" / "ui-read.json"
        marks = ReadMarksFile(path, lambda e: (posted.append(e),
                                               threads.append(threading.current_thread())))
        marks.save({"#general": {"read": "h2", "unread": 1, "mention": False}})
        marks.load().result(timeout=10)
        marks.close()
        assert posted == [ReadMarksLoaded({"#general": {"read": "h2", "unread": 1,
                                                         "mention": False}})]
        assert threads[0] is not threading.main_thread()
