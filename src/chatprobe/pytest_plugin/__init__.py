"""pytest plugin that collects YAML contract suites (registered by the ``pytest11`` entry point)."""
