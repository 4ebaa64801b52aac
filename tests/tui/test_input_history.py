"""Input history: Up/Down walk through earlier lines and come back to the draft."""

from tui.input_history import InputHistory


def walk_back(h: InputHistory) -> list[str]:
    """Every line Up shows, newest first, until the oldest."""
    seen = []
    while (line := h.older("")) is not None:
        seen.append(line)
    return seen


class TestInputHistory:
    def test_input_history__walks_back_and_forth_and_returns_to_the_draft(self):
        h = InputHistory()
        for line in ("join general", "hello", "msg bob hi"):
            h.add(line)
        assert h.older("draft") == "msg bob hi"
        assert h.older("msg bob hi") == "hello"
        assert h.older("hello") == "join general"
        assert h.older("join general") is None  # the oldest stays
        assert h.newer("join general") == "hello"
        assert h.newer("hello") == "msg bob hi"
        assert h.newer("msg bob hi") == "draft"
        assert h.newer("draft") is None

    def test_input_history__skips_blank_lines_and_repeats(self):
        h = InputHistory()
        for line in ("a", "", "   ", "a", "b", "a"):
            h.add(line)
        assert walk_back(h) == ["a", "b", "a"]

    def test_input_history__empty_has_nothing_older_or_newer(self):
        h = InputHistory()
        assert h.older("x") is None
        assert h.newer("x") is None

    def test_input_history__keeps_only_the_newest_lines_up_to_the_limit(self):
        h = InputHistory(limit=3)
        for i in range(10):
            h.add(str(i))
        assert walk_back(h) == ["9", "8", "7"]

    def test_input_history__a_new_line_ends_the_walk(self):
        h = InputHistory()
        h.add("one")
        h.add("two")
        h.older("")
        h.add("three")
        assert h.older("") == "three"
