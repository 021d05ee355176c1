"""CNN models, patch datasets, training and scoring tasks, the model registry (see DESIGN.md "Models")."""
