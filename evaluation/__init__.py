"""The comparison pages, caches and exports; the statistics themselves live in evaluation.stats."""
