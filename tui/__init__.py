"""The full-screen terminal front end of chordchat (the only package that knows urwid)."""
