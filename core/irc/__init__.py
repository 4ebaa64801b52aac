"""The IRC gateway: any IRC client as a front end, each connection one chat user of this node.

``message`` is the line codec, ``session`` the per-client state machine (pure),
``adapter`` the chat user behind a connection, ``gateway`` the asyncio server.
"""

from .gateway import GatewayError, IrcGateway, is_loopback

__all__ = ["GatewayError", "IrcGateway", "is_loopback"]
