"""Excel workbooks that ops staff review, one per run."""
