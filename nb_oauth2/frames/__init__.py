"""Protected JSON APIs into DataFrames: fetching, pagination, records and columns. Works with any requests.Session."""
