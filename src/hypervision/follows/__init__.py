"""Follows and notifications: what each officer follows (categories, situations, zones), their
personal preferences and saved views, and the notifications computed from them."""
