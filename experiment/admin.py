"""Admin for experiments, stages, participation, purge reports, dashboard."""
