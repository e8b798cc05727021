"""What every room stands on: atomic files and hashes, locks, progress bars, provenance, the
allocator, the checks of user input made before any work starts, and config reading."""
