"""`irtune run`: a whole study from one TOML file, as resumable stages."""
