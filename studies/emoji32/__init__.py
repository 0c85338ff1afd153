"""The reproduction study: the paper's Table 1 in miniature, on emoji at 32 px (its README says how to run it)."""
