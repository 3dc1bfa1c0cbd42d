"""Sources: PurpleAir payloads parsed into typed readings and dead letters."""
