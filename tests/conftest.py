"""Suite-wide pytest configuration: shared fixture plugins."""

pytest_plugins = ["tests.support.engine", "tests.support.backoffice"]
