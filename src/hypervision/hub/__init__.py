"""The hub (issue 18, docs/adr/0042): the platform's home — the crisis directory of liaison
officers on duty, shared labelled documents and the CNCS's announcements."""
