"""Browser tests: the officers' web app driven by Chromium through Playwright."""
