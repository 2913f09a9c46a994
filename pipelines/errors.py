"""Errors shared across the package (kept here so that modules can raise them without import cycles)."""


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field and the file."""
