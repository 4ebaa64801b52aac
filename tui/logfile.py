"""Where the UI process logs: a file, never the terminal the UI draws on."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from pathlib import Path


def log_path(options) -> Path:
    """``$CHORDCHAT_LOG`` if set, else ``~/.cache/chordchat/<nick>-<port>.log``
    (``$XDG_CACHE_HOME`` respected), else the same name in the temporary directory."""
    if os.environ.get("CHORDCHAT_LOG"):
        return Path(os.environ["CHORDCHAT_LOG"])
    name = f"{options.nick}-{options.listen.port}.log"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chordchat"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if os.access(cache, os.W_OK):
            return cache / name
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"chordchat-{name}"


def setup_logging(options, level: int = logging.INFO) -> str:
    """Send every logger of the process (core, UI, headless) to a file, never to the
    terminal or stdout, and any uncaught exception of a thread with them; returns the
    file's path. A log file set up already (``--log-file``) is kept."""
    path = _log_to_file(options, level)
    install_hooks(path)
    return path


def install_hooks(path: str) -> None:
    """An uncaught exception (main thread or any other) is logged with its traceback; the
    terminal gets one line naming the log file."""
    def uncaught(kind, error, trace, thread: str = "main") -> None:
        if issubclass(kind, KeyboardInterrupt):
            return   # Ctrl+C at the very end: nothing went wrong
        logging.getLogger("chordchat").critical("uncaught in the %s thread", thread,
                                                exc_info=(kind, error, trace))
        try:
            print(f"chordchat: unexpected failure ({kind.__name__}); details in {path}",
                  file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass

    sys.excepthook = uncaught
    threading.excepthook = lambda a: uncaught(a.exc_type, a.exc_value, a.exc_traceback,
                                              a.thread.name if a.thread else "?")


def _log_to_file(options, level: int) -> str:
    root = logging.getLogger()
    for old in list(root.handlers):
        if not isinstance(old, logging.FileHandler):
            root.removeHandler(old)  # e.g. a stderr handler: the UI owns the terminal
    logging.captureWarnings(True)
    kept = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    if kept:
        return kept[0].baseFilename
    path = log_path(options)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    return str(path)
