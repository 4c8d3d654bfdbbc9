"""Sinks: where buffered samples go. One small interface (`base`), one module per target."""
