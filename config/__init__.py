"""Default configuration shipped with the package (reconcile.toml, CSV bank profiles)."""
