"""HTTP entrypoints: parse, call the domain services, answer JSON."""
