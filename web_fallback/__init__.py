"""Web pages over the channel contract: the customers' fallback site (``customer``), the agents' console
and simulator (``agents``)."""
