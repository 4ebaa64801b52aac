"""The IRC gateway: any IRC client as a front end, each connection one chat user of this node."""
