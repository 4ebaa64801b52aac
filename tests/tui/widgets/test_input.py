"""The input line: one row at any length, the cursor's end of a long line in view, and a
cost per key that does not grow with the text (a pasted line is not quadratic)."""

import urwid

from tui.widgets.input import InputLine


def typed(text: str) -> InputLine:
    field = InputLine()
    for ch in text:
        field.keypress((40,), ch)
    return field


class TestInputLine:
    def test_input__a_long_line_stays_one_row_and_shows_the_end_at_the_cursor(self):
        field = typed("start " + "x" * 300 + " the end")
        assert field.rows((40,)) == 1
        canvas = field.render((40,), focus=True)
        row = canvas.text[0].decode()
        assert len(canvas.text) == 1 and row.rstrip().endswith("x the end")
        assert "start" not in row
        assert canvas.cursor == (len(row.rstrip()), 0)

    def test_input__home_shows_the_start_again(self):
        field = typed("start " + "x" * 300)
        field.keypress((40,), "home")
        assert field.render((40,), focus=True).text[0].decode().startswith("> start x")

    def test_input__a_key_costs_no_more_at_the_end_of_a_long_line(self, monkeypatch):
        # measured as work, not time: the layout runs no more than once per key at any length
        # (counted on every urwid.Text, the one inside the Edit among them)
        field = typed("x" * 20_000)
        calls = []
        original = urwid.Text.get_line_translation

        def counting(*args, **kwargs):
            calls.append(args)
            return original(*args, **kwargs)

        monkeypatch.setattr(urwid.Text, "get_line_translation", counting)
        for _ in range(50):
            field.keypress((40,), "y")
            field.rows((40,))
        assert calls == []
        assert field.edit_text.endswith("y" * 50)

    def test_input__take_empties_it_and_replace_puts_the_cursor_at_the_end(self):
        field = typed("hello")
        assert field.take() == "hello" and field.edit_text == ""
        field.replace("join general")
        assert field.edit_pos == len("join general")
