"""Analytics: features -> models -> results for the twins (see ../shared/DESIGN.md and docs/analytics.md).

Modules, one concept each: ``table`` (tables and column roles), ``features`` (per-cycle/window features),
``samples`` (table -> feature matrix), ``anomaly`` (detectors with control limits), ``forecast``
(forecasting-residual detector for row streams), ``health`` (health index, remaining life), ``model`` (the
generic train/score API), ``fastforest`` (few-sample tree prediction), ``persistence`` (model files), ``runner``
(live scoring into ConditionMonitoring), ``spc`` (control charts), ``evaluation`` (pinned protocols on public
datasets), ``cli`` (``twinedge analytics``).
"""
