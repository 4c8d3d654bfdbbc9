"""edge_agent (see DESIGN.md)."""
