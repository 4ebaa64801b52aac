"""Where the UI process logs: a file, never the terminal the UI draws on."""

from __future__ import annotations

import logging
import os
import tempfile
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
    """Send every logger of the process (core and UI) to a file, never to the terminal;
    returns the file's path. A log file set up already (``--log-file``) is kept."""
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
