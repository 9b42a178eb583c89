"""pytest hooks for chatprobe's YAML contract suites (being built; see issue 4)."""
