"""The outbox: one event row per state change, written in the change's own transaction, read by
the live hub (``live``). Below identity and every domain, which all write events."""
