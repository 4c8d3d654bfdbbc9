"""Storage backends of the twin server: one interface (`base`), one module per backend."""
