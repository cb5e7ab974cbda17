"""Open data: publications of data products as public datasets (issue 19, ADR 0035)."""
