print("log-bench: not built yet")
