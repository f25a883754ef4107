"""Web pages served beside the conversation channels: the agents' console and simulator (``agents``)."""
