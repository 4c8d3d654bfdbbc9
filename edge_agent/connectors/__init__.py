"""Protocol connectors: one small interface (`base`), one module per protocol."""
