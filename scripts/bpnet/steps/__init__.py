"""Pipeline steps: training, prediction, evaluation, track export, experiments."""
