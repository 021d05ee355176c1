"""Reader-versus-model statistics (pure functions) and the comparison views."""
