"""The HTTP adapter: entrypoints (blueprints), the Flask side of authentication (`auth`) and
the HTTP statuses and JSON of a batch's outcomes (`batch_answer`); the rules they apply are
the service's pure modules (authentication, intake, domain, errors)."""
