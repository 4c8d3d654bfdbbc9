"""TwinEdge: the `twinedge` console command and the demo that composes the parts."""

__version__ = "0.1.0"
