"""Small built-in data sets shipped with the package."""
