"""The conversation list: unread counts, mention marks, selection."""

from tui.conversations import Conversations, mention_spans


class TestConversations:
    def test_conversations__home_is_first_and_shown(self):
        c = Conversations()
        assert [x.kind for x in c.items] == ["home"]
        assert c.shown.kind == "home"

    def test_conversations__channel_names_compare_like_the_core(self):
        c = Conversations()
        a = c.channel("#General")
        assert c.channel("general") is a
        assert a.title == "#General"
        assert c.channels() == ["General"]

    def test_conversations__private_nicks_compare_case_insensitively(self):
        c = Conversations()
        assert c.private("Bob") is c.private("bob")

    def test_conversations__unread_counts_only_when_not_shown(self):
        c = Conversations()
        general, bob = c.channel("general"), c.private("bob")
        c.select(1)
        c.arrived(general, mention=False)
        c.arrived(bob, mention=False)
        c.arrived(bob, mention=True)
        assert (general.unread, bob.unread, bob.mention) == (0, 2, True)
        c.select(2)
        assert (bob.unread, bob.mention) == (0, False)

    def test_conversations__step_wraps_around(self):
        c = Conversations()
        c.channel("a")
        c.channel("b")
        c.step(-1)
        assert c.shown.title == "#b"
        c.step(+1)
        assert c.shown.kind == "home"

    def test_conversations__select_out_of_range_changes_nothing(self):
        c = Conversations()
        assert not c.select(5)
        assert c.current == 0


class TestMentions:
    def test_mentions__whole_word_any_case(self):
        assert mention_spans("hi Alice, look", "alice") == [(3, 8)]
        assert mention_spans("ALICE: ping", "alice") == [(0, 5)]
        assert not mention_spans("malice aforethought", "alice")
        assert not mention_spans("alice_2 is not her", "alice")
        assert not mention_spans("anything", "")
