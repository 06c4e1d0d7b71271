"""Sub-commands of `robots` beyond `run` and `config`: vault, runs, apply, scheduler."""
