"""twin_server (see DESIGN.md)."""
