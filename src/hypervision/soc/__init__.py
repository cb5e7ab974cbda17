"""Handing the audit trail to the SOC (docs/adr/0037): RFC 5424 syslog over TLS and JSON lines,
at least once, from a cursor persisted per sink."""
