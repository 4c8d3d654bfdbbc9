"""One module per dashboard page; each turns a Ctx into the page's HTML."""
