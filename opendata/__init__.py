"""Open data: every released UTC day exported as CSV and GeoParquet with a Frictionless
``datapackage.json``, served without a key under ``/open-data/`` (docs/OPENDATA.md)."""
