"""The live view: a web page over the flow's database (map, open incidents, a sensor's story,
the run's health), served by `python -m viewer --db results.db` (`viewer/cli.py`)."""
