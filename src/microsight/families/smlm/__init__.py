"""Single-molecule localization family: simulated or given movies, localization tables."""
