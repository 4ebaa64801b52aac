"""chordchat's core: the Chord overlay, the chat service on it, and the runtime thread."""
