"""Security alerts (issue 21, docs/adr/0040): rules a security officer sets without code,
evaluated on the audit trail as the sequencer chains it, and the alerts they raise."""
