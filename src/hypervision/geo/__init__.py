"""Geography shared by the domains: the operation's gazetteer of venues."""
