"""analytics (see DESIGN.md)."""
