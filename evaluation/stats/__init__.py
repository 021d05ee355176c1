"""Reader-versus-model statistics as pure functions over arrays.

No Django and nothing of the apps is imported here, so every layer (and the benchmarks) may use
these functions like numpy, and they are tested without a database.
"""
