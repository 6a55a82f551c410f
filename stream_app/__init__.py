"""The Faust stream app: scores records, joins delayed labels, learns, reports."""
