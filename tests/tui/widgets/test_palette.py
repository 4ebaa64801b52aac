"""Nick colours: stable for a nick in any case and any process, and spread over the palette."""

import subprocess
import sys

from tui.widgets.palette import NICK_COLOURS, PALETTE, nick_attr


class TestNickColour:
    def test_nick_attr__same_for_any_case_and_defined_in_the_palette(self):
        assert nick_attr("Alice") == nick_attr("alice") == nick_attr("ALICE")
        assert nick_attr("alice") in {name for name, *_ in PALETTE}

    def test_nick_attr__same_in_another_process(self):
        # str hashes are salted per process; the colour must not be
        other = subprocess.run([sys.executable, "-c", "from tui.widgets.palette import "
                                "nick_attr; print(nick_attr('alice'))"],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert other == nick_attr("alice")

    def test_nick_attr__many_nicks_use_most_colours(self):
        used = {nick_attr(f"user{i}") for i in range(200)}
        assert len(used) >= len(NICK_COLOURS) - 1
