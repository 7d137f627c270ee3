"""Background work: webhook delivery, and the loop that runs it (in `serve` or `consentry worker`)."""
