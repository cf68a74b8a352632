"""The Plotly Dash frontend, mounted at /dashboard/; a client of the API's services."""
