"""chordchat's front ends: the command line and the full-screen urwid UI (tui.app).

This package is the only one that knows urwid.
"""
