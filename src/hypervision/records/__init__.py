"""What every protected record shares: the label, versions, the one write shape,
visible/find/list, ETags, label schemas; and the one registry of protected kinds."""
