"""chordchat's front ends: the command line, and the full-screen urwid UI (tui.app)."""
