"""Partner ingestion service of the personal carbon account platform."""
