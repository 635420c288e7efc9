"""Factor calculation service: versioned, sourced methodologies turning behaviour into grams CO2e."""
