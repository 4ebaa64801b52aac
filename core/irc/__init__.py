"""The IRC gateway: any IRC client as a front end, each connection one chat user of this node.

``message`` is the line codec; ``session`` the per-client state machine (pure), made of
``registration``, ``channels``, ``commands`` and ``chat_events``, which speak through
``replies`` and ask the driver for ``actions``; ``adapter`` is the chat user behind a
connection, ``gateway`` the asyncio server.
"""

from .gateway import GatewayError, IrcGateway, is_loopback, valid_server_name

__all__ = ["GatewayError", "IrcGateway", "is_loopback", "valid_server_name"]
