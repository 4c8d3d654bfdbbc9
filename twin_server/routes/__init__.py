"""HTTP routes of the AAS Part 2 API, one module per interface."""
