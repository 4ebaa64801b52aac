"""The key table: every binding is unique, has an action the app implements, and shows in help."""

from pathlib import Path

from core.chat.model.commands import COMMANDS
from tui import keys


class TestKeyTable:
    def test_keys__no_key_is_bound_twice(self):
        all_keys = [k for b in keys.BINDINGS for k in b.keys]
        assert len(all_keys) == len(set(all_keys))

    def test_keys__alt_digits_go_to_conversations_in_order(self):
        assert [keys.action_for(f"meta {i}") for i in range(1, 10)] == [
            ("goto", i) for i in range(9)]

    def test_keys__the_keys_the_design_asks_for_are_bound(self):
        wanted = {"ctrl n": "next_conversation", "ctrl p": "previous_conversation",
                  "page up": "scroll_up", "page down": "scroll_down", "f1": "help",
                  "f2": "toggle_log", "ctrl c": "quit", "tab": "complete",
                  "up": "input_history_older", "down": "input_history_newer"}
        assert {k: keys.action_for(k)[0] for k in wanted} == wanted

    def test_keys__unbound_keys_have_no_action(self):
        assert keys.action_for("a") is None
        assert keys.action_for("meta 0") is None

    def test_keys__help_has_one_row_per_binding_with_its_label(self):
        assert keys.help_rows() == [(b.label, b.help) for b in keys.BINDINGS]


class TestReadme:
    """The README's tables are written from the key table and the command tables."""

    def readme_section(self, title: str) -> str:
        text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
        start = text.index(f"## {title}\n")
        end = text.find("\n## ", start + 1)
        return text[start:end if end >= 0 else None]

    def test_readme__every_key_binding_is_in_the_keys_table(self):
        section = self.readme_section("Keys")
        for binding in keys.BINDINGS:
            for label in binding.label.replace("…", " ").replace("/", " ").split():
                assert label in section, f"{binding.label} ({binding.action}) not in README"

    def test_readme__every_command_is_in_the_commands_table(self):
        section = self.readme_section("Commands")
        for spec in COMMANDS:
            assert f"`{spec.name}" in section, f"{spec.name} not in README"
        assert "`//" in section, "the README does not say how to send text starting with /"
