"""Web pages over the channel contract: the customers' fallback site (``customer``) and agents' tools."""
