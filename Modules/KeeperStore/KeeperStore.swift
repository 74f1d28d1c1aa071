// KeeperStore: see ARCHITECTURE.md (module list). Filled in by its issue.
