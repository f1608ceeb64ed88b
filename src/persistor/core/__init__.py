"""persistor."""
