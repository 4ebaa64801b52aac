"""Readline's moves on (text, cursor), and the input line's kill and yank."""

import pytest

from tui.line_editing import MOVES, Edited, line_down, line_up, yank
from tui.widgets.input import InputLine

TEXT = "say hello-world to you"
#       0123456789012345678901


class TestMoves:
    @pytest.mark.parametrize(("move", "cursor", "want"), [
        ("line_start", 10, Edited(TEXT, 0)),
        ("line_end", 3, Edited(TEXT, len(TEXT))),
        ("char_back", 0, Edited(TEXT, 0)),
        ("char_back", 5, Edited(TEXT, 4)),
        ("char_forward", len(TEXT), Edited(TEXT, len(TEXT))),
        ("word_back", 15, Edited(TEXT, 10)),        # in "world": to its start
        ("word_back", 10, Edited(TEXT, 4)),         # over "-" to "hello"
        ("word_forward", 4, Edited(TEXT, 9)),       # to the end of "hello"
        ("word_forward", 9, Edited(TEXT, 15)),
        ("kill_to_start", 4, Edited("hello-world to you", 0, "say ")),
        ("kill_to_end", 15, Edited("say hello-world", 15, " to you")),
        ("kill_word_back", 15, Edited("say  to you", 4, "hello-world")),   # Ctrl+W: to a blank
        ("kill_alnum_word_back", 15, Edited("say hello- to you", 10, "world")),
        ("kill_word_forward", 3, Edited("say-world to you", 3, " hello")),
    ])
    def test_line_editing__moves(self, move, cursor, want):
        assert MOVES[move](TEXT, cursor) == want

    def test_line_editing__line_moves_stay_on_the_cursors_line(self):
        text = "first\nsecond line\nthird"
        assert MOVES["line_start"](text, 9) == Edited(text, 6)
        assert MOVES["line_end"](text, 9) == Edited(text, 17)
        assert MOVES["kill_to_end"](text, 9) == Edited("first\nsec\nthird", 9, "ond line")
        assert MOVES["kill_to_end"](text, 5) == Edited("firstsecond line\nthird", 5, "\n")
        assert MOVES["kill_to_start"](text, 9) == Edited("first\nond line\nthird", 6, "sec")

    def test_line_editing__up_and_down_keep_the_column(self):
        text = "first\nsecond line\nthird"
        assert line_up(text, 3) is None and line_down(text, 20) is None
        assert line_down(text, 3) == 9
        assert line_down(text, 15) == 23    # "third" is shorter: its end
        assert line_up(text, 16) == 5       # "first" is shorter: its end

    def test_line_editing__yank_puts_the_text_back_at_the_cursor(self):
        assert yank("ab", 1, "XY") == Edited("aXYb", 3)


class TestInputLineEditing:
    def test_input__kills_in_a_row_add_up_and_yank_brings_them_back(self):
        field = InputLine()
        field.replace("one two three")
        field.edit("kill_word_back")
        field.edit("kill_word_back")
        assert field.edit_text == "one " and field.killed == "two three"
        field.edit("line_start")
        field.edit("yank")
        assert field.edit_text == "two threeone " and field.edit_pos == len("two three")

    def test_input__a_key_between_two_kills_starts_a_new_yank_buffer(self):
        field = InputLine()
        field.replace("one two")
        field.edit("kill_word_back")
        field.keypress((40,), "x")
        field.edit("kill_to_start")
        assert field.killed == "one x"

    def test_input__several_lines_show_up_to_max_rows_around_the_cursor(self):
        field = InputLine(max_rows=3)
        field.replace("\n".join(f"line {i}" for i in range(10)))
        assert field.rows((40,)) == 3
        shown = [r.decode().rstrip() for r in field.render((40,), focus=True).text]
        assert shown == ["line 7", "line 8", "line 9"]
        field.set_edit_pos(0)
        shown = [r.decode().rstrip() for r in field.render((40,), focus=True).text]
        assert shown == ["> line 0", "line 1", "line 2"]
