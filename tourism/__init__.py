"""Tourism analytics over released data: areas (registered zones with capacity and time zone);
the daily products follow the release feed (issue #14)."""
