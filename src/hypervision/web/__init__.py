"""The officers' web app: server-rendered pages (Jinja2 + HTMX, DSFR) over the same service
functions as the API."""
