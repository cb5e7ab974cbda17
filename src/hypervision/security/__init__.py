"""Security operations over the audit trail: the security officers' queries (and, to come, the
security console). Above identity, which the trail itself sits below."""
