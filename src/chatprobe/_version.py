"""The package version, in a module of its own so any module can read it without importing
the package's ``__init__`` (whose lazy exports point back at library modules)."""

__version__ = "0.1.0"
