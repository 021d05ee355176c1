"""CNN models, patch datasets, training and scoring tasks, the model registry."""
