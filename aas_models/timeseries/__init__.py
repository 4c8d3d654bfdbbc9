"""The time-series store: shared data that the agent writes and the server and analytics read.

One interface (`base`), one module per backend (`sqlite` is the embedded default). A series is
keyed by the (submodel id, idShortPath) of the element that holds the live value, which is what the
Time Series Data submodel's LinkedSegment Query names.
"""
